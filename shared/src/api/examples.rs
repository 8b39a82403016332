//! One example of every frame, for the AsyncAPI document; a test checks each against its schema.

use serde_json::{json, Value};

const ROOM: &str = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5";
const MESSAGE: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
const PARENT: &str = "01890a5d-ac96-774b-bcce-b302099a8001";
const AT: &str = "2026-11-25T04:40:00Z";

fn room() -> Value {
    json!({ "id": ROOM, "name": "Project Discussion", "description": "Discussion about the project",
        "room_type": "group", "is_private": false, "created_by": "alice", "created_at": AT, "frozen": false,
        "slow_mode_seconds": 0 })
}

fn participants() -> Value {
    json!([
        { "user_id": "alice", "display_name": "Alice", "role": "admin", "joined_at": AT },
        { "user_id": "bob", "display_name": "Bob", "role": "member", "joined_at": AT },
    ])
}

fn message() -> Value {
    json!({ "id": MESSAGE, "seq": 80, "room_seq": 41, "room_id": ROOM, "sender_id": "alice", "sender_name": "Alice",
        "message_type": "text", "content": "Hello, world!", "attachments": [], "mentions": ["bob"], "reply_to": null,
        "reply_count": 0, "client_msg_id": "c-42", "created_at": AT, "edited_at": null, "deleted_at": null,
        "deleted_by": null, "reactions": [{ "emoji": "👍", "count": 1, "users": ["bob"] }] })
}

fn pin() -> Value {
    json!({ "message": message(), "pinned_by": "bob", "pinned_at": AT })
}

fn report(status: &str) -> Value {
    let resolved = status != "open";
    json!({ "id": "01890a5d-ac96-774b-bcce-b302099a8999", "room_id": ROOM, "message_id": MESSAGE, "reporter": "carol",
        "reason": "spam", "created_at": AT, "status": status, "resolved_by": if resolved { json!("bob") } else { json!(null) },
        "resolved_at": if resolved { json!(AT) } else { json!(null) }, "message": message() })
}

fn unread() -> Value {
    json!({ "room_id": ROOM, "unread_count": 3, "mention_count": 1, "capped": false, "last_seq": 80, "last_room_seq": 41 })
}

pub fn client_frames() -> Vec<Value> {
    vec![
        json!({ "type": "create_room", "name": "Project Discussion", "room_type": "group",
            "participants": ["bob", "carol"], "description": "Discussion about the project", "is_private": false,
            "client_room_id": "r-7", "request_id": "r1" }),
        json!({ "type": "join_room", "room_id": ROOM, "request_id": "r2" }),
        json!({ "type": "leave_room", "room_id": ROOM }),
        json!({ "type": "list_rooms", "room_type": "support" }),
        json!({ "type": "update_room", "room_id": ROOM, "name": "Launch", "is_private": true }),
        json!({ "type": "invite", "room_id": ROOM, "user_ids": ["carol"] }),
        json!({ "type": "remove_participant", "room_id": ROOM, "user_id": "bob" }),
        json!({ "type": "set_role", "room_id": ROOM, "user_id": "bob", "role": "moderator" }),
        json!({ "type": "mute_user", "room_id": ROOM, "user_id": "carol", "duration_seconds": 600 }),
        json!({ "type": "unmute_user", "room_id": ROOM, "user_id": "carol" }),
        json!({ "type": "ban_user", "room_id": ROOM, "user_id": "carol", "reason": "spam" }),
        json!({ "type": "unban_user", "room_id": ROOM, "user_id": "carol" }),
        json!({ "type": "send_message", "room_id": ROOM, "content": "Hello, world!", "message_type": "text",
            "attachments": [], "mentions": ["bob"], "reply_to": PARENT, "client_msg_id": "c-42", "request_id": 7 }),
        json!({ "type": "edit_message", "message_id": MESSAGE, "content": "fixed typo" }),
        json!({ "type": "delete_message", "message_id": MESSAGE }),
        json!({ "type": "get_edit_history", "message_id": MESSAGE }),
        json!({ "type": "add_reaction", "message_id": MESSAGE, "emoji": "👍" }),
        json!({ "type": "remove_reaction", "message_id": MESSAGE, "emoji": "👍" }),
        json!({ "type": "get_thread", "message_id": PARENT, "after": "80", "limit": 20 }),
        json!({ "type": "get_receipts", "message_id": MESSAGE }),
        json!({ "type": "typing_start", "room_id": ROOM }),
        json!({ "type": "typing_stop", "room_id": ROOM }),
        json!({ "type": "mark_read", "room_id": ROOM, "message_ids": [MESSAGE] }),
        json!({ "type": "get_unread" }),
        json!({ "type": "get_history", "room_id": ROOM, "before": "80", "limit": 50 }),
        json!({ "type": "get_presence", "user_ids": ["bob", "carol"] }),
        json!({ "type": "announce", "content": "Maintenance at 22:00" }),
        json!({ "type": "refresh_token", "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl" }),
        json!({ "type": "ping", "request_id": "r3" }),
        json!({ "type": "pin_message", "message_id": MESSAGE }),
        json!({ "type": "unpin_message", "message_id": MESSAGE }),
        json!({ "type": "list_pins", "room_id": ROOM }),
        json!({ "type": "freeze_room", "room_id": ROOM }),
        json!({ "type": "unfreeze_room", "room_id": ROOM }),
        json!({ "type": "set_slow_mode", "room_id": ROOM, "seconds": 30 }),
        json!({ "type": "block_user", "user_id": "mallory" }),
        json!({ "type": "unblock_user", "user_id": "mallory" }),
        json!({ "type": "list_blocked" }),
        json!({ "type": "report_message", "message_id": MESSAGE, "reason": "spam" }),
        json!({ "type": "list_reports", "room_id": ROOM, "status": "open" }),
        json!({ "type": "resolve_report", "report_id": "01890a5d-ac96-774b-bcce-b302099a8999", "action": "dismiss" }),
    ]
}

pub fn server_frames() -> Vec<Value> {
    vec![
        json!({ "type": "connection", "status": "connected", "connection_id": "Jx3kZf0AoAMCJxQ=", "user_id": "alice",
            "tenant_id": "acme", "display_name": "Alice", "server_time": AT, "unread": [unread()] }),
        json!({ "type": "error", "code": "permission_denied", "message": "you are not a member of this room",
            "request_id": "r1" }),
        json!({ "type": "room_created", "room": room(), "participants": participants(), "request_id": "r1" }),
        json!({ "type": "room_joined", "room": room(), "participants": participants(), "request_id": "r2" }),
        json!({ "type": "room_left", "room_id": ROOM }),
        json!({ "type": "user_joined", "room_id": ROOM, "user_id": "bob", "display_name": "Bob" }),
        json!({ "type": "user_left", "room_id": ROOM, "user_id": "bob" }),
        json!({ "type": "message_sent", "message": message(), "duplicate": false, "request_id": 7 }),
        json!({ "type": "new_message", "message": message() }),
        json!({ "type": "typing_start", "room_id": ROOM, "user_id": "bob", "display_name": "Bob" }),
        json!({ "type": "typing_stop", "room_id": ROOM, "user_id": "bob" }),
        json!({ "type": "read_marked", "room_id": ROOM, "message_ids": [MESSAGE], "unread_count": 0,
            "mention_count": 0, "capped": false }),
        json!({ "type": "messages_read", "room_id": ROOM, "user_id": "bob", "message_ids": [MESSAGE], "read_at": AT }),
        json!({ "type": "history", "room_id": ROOM, "messages": [message()], "has_more": true, "next_cursor": "80" }),
        json!({ "type": "presence", "user_id": "bob", "status": "online", "last_seen": AT }),
        json!({ "type": "pong", "request_id": "r3" }),
        json!({ "type": "token_refreshed", "expires_at": "2026-11-25T05:40:00Z" }),
        json!({ "type": "room_updated", "room": room() }),
        json!({ "type": "added_to_room", "room": room(), "participants": participants(), "added_by": "alice" }),
        json!({ "type": "invited", "room_id": ROOM, "user_ids": ["carol"] }),
        json!({ "type": "user_removed", "room_id": ROOM, "user_id": "bob", "by": "alice" }),
        json!({ "type": "role_changed", "room_id": ROOM, "user_id": "bob", "role": "moderator", "by": "alice" }),
        json!({ "type": "user_muted", "room_id": ROOM, "user_id": "carol", "until": AT, "by": "bob" }),
        json!({ "type": "user_unmuted", "room_id": ROOM, "user_id": "carol", "by": "bob" }),
        json!({ "type": "user_banned", "room_id": ROOM, "user_id": "carol", "by": "alice", "reason": "spam" }),
        json!({ "type": "user_unbanned", "room_id": ROOM, "user_id": "carol", "by": "alice" }),
        json!({ "type": "message_edited", "message": message() }),
        json!({ "type": "message_deleted", "room_id": ROOM, "message_id": MESSAGE, "deleted_by": "bob",
            "deleted_at": AT }),
        json!({ "type": "edit_history", "message_id": MESSAGE, "current": message(),
            "versions": [{ "version": 1, "content": "frist", "edited_by": "alice", "edited_at": AT }] }),
        json!({ "type": "reaction_added", "room_id": ROOM, "message_id": MESSAGE, "user_id": "bob", "emoji": "👍",
            "reactions": [{ "emoji": "👍", "count": 2, "users": ["bob", "carol"] }] }),
        json!({ "type": "reaction_removed", "room_id": ROOM, "message_id": MESSAGE, "user_id": "carol",
            "emoji": "👍", "reactions": [{ "emoji": "👍", "count": 1, "users": ["bob"] }] }),
        json!({ "type": "thread", "parent": message(), "replies": [], "has_more": false, "next_cursor": null }),
        json!({ "type": "receipts", "message_id": MESSAGE, "delivered": [{ "user_id": "bob", "at": AT }],
            "read": [{ "user_id": "bob", "at": AT }] }),
        json!({ "type": "unread", "rooms": [unread()] }),
        json!({ "type": "rooms", "rooms": [{ "room": room(), "role": "admin", "room_id": ROOM, "unread_count": 0,
            "mention_count": 0, "capped": false, "last_seq": 80, "last_room_seq": 41, "participant_count": 3 }] }),
        json!({ "type": "presence_state", "users": [{ "user_id": "bob", "status": "offline", "last_seen": AT }] }),
        json!({ "type": "mention", "room_id": ROOM, "message": message() }),
        json!({ "type": "announcement", "content": "Maintenance at 22:00", "from": "boss", "sent_at": AT }),
        json!({ "type": "message_pinned", "room_id": ROOM, "pin": pin() }),
        json!({ "type": "message_unpinned", "room_id": ROOM, "message_id": MESSAGE, "by": "bob" }),
        json!({ "type": "pins", "room_id": ROOM, "pins": [pin()] }),
        json!({ "type": "room_frozen", "room_id": ROOM, "by": "alice" }),
        json!({ "type": "room_unfrozen", "room_id": ROOM, "by": "alice" }),
        json!({ "type": "slow_mode_set", "room_id": ROOM, "seconds": 30, "by": "alice" }),
        json!({ "type": "user_blocked", "user_id": "mallory", "blocked_at": AT }),
        json!({ "type": "user_unblocked", "user_id": "mallory" }),
        json!({ "type": "blocked_users", "users": [{ "user_id": "mallory", "blocked_at": AT }] }),
        json!({ "type": "message_reported", "report": report("open") }),
        json!({ "type": "reports", "reports": [report("open")] }),
        json!({ "type": "report_resolved", "report": report("dismissed") }),
    ]
}
