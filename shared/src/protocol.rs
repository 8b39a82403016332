//! The wire protocol: client frames in, server frames out.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{
    Attachment, BlockedUser, Edit, Message, MessageType, Participant, Pin, Reaction, Receipt, Report, ReportStatus,
    Role, Room, RoomSummary, RoomType, Unread,
};
// The checks the service makes, stated in the schemas too where JSON Schema can say them.
use crate::service::validate::{
    MAX_ATTACHMENTS, MAX_CONTENT_CHARS, MAX_DESCRIPTION_CHARS, MAX_EMOJI_CHARS, MAX_ID_CHARS, MAX_INITIAL_MEMBERS,
    MAX_MENTIONS, MAX_MUTE_SECS, MAX_NAME_CHARS, MAX_REASON_CHARS, MAX_SLOW_MODE_SECS, MAX_USERS_PER_FRAME,
};

/// Frames a client sends. `type` selects the variant; field names follow the product spec.
#[derive(Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub enum ClientFrame {
    /// Join a public room (or one you were invited to) and receive its events.
    JoinRoom {
        room_id: Uuid,
    },
    LeaveRoom {
        room_id: Uuid,
    },
    SendMessage(SendMessage),
    /// Others in the room see `typing_start` until `typing_stop` or the indicator expires.
    TypingStart {
        room_id: Uuid,
    },
    TypingStop {
        room_id: Uuid,
    },
    MarkRead {
        room_id: Uuid,
        /// Empty means everything in the room up to now.
        #[serde(default)]
        #[schemars(length(max = MAX_HISTORY_PAGE))]
        message_ids: Vec<Uuid>,
    },
    CreateRoom(CreateRoom),
    /// `get_messages` is accepted as another name for it.
    #[serde(alias = "get_messages")]
    GetHistory(HistoryRequest),
    Ping,
    /// Room admins only; absent fields stay as they are.
    UpdateRoom {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
        name: Option<String>,
        #[schemars(length(max = MAX_DESCRIPTION_CHARS))]
        description: Option<String>,
        is_private: Option<bool>,
    },
    Invite {
        room_id: Uuid,
        #[schemars(length(max = MAX_USERS_PER_FRAME), inner(length(min = 1, max = MAX_ID_CHARS)))]
        user_ids: Vec<String>,
    },
    RemoveParticipant {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
    },
    SetRole {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
        role: Role,
    },
    /// Without `duration_seconds` the mute lasts an hour.
    MuteUser {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
        #[schemars(range(min = 1, max = MAX_MUTE_SECS))]
        duration_seconds: Option<u64>,
    },
    UnmuteUser {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
    },
    BanUser {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
        #[schemars(length(max = MAX_DESCRIPTION_CHARS))]
        reason: Option<String>,
    },
    UnbanUser {
        room_id: Uuid,
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
    },
    EditMessage {
        message_id: Uuid,
        #[schemars(length(min = 1, max = MAX_CONTENT_CHARS))]
        content: String,
    },
    DeleteMessage {
        message_id: Uuid,
    },
    GetEditHistory {
        message_id: Uuid,
    },
    AddReaction {
        message_id: Uuid,
        #[schemars(length(min = 1, max = MAX_EMOJI_CHARS))]
        emoji: String,
    },
    RemoveReaction {
        message_id: Uuid,
        #[schemars(length(min = 1, max = MAX_EMOJI_CHARS))]
        emoji: String,
    },
    GetThread {
        message_id: Uuid,
        after: Option<Cursor>,
        /// Outside 1-100 it is clamped.
        #[schemars(range(min = 1, max = MAX_HISTORY_PAGE))]
        limit: Option<u32>,
    },
    GetReceipts {
        message_id: Uuid,
    },
    GetUnread,
    ListRooms {
        room_type: Option<RoomType>,
    },
    GetPresence {
        #[schemars(length(max = MAX_USERS_PER_FRAME), inner(length(min = 1, max = MAX_ID_CHARS)))]
        user_ids: Vec<String>,
    },
    /// Tenant admins only: to every connection of the tenant.
    Announce {
        #[schemars(length(min = 1, max = MAX_CONTENT_CHARS))]
        content: String,
    },
    /// A fresh token for the same user and tenant, before the connection's one expires.
    RefreshToken {
        token: String,
    },
    /// Moderators and admins: pins a message of the room (a room holds at most 50 pins).
    PinMessage {
        message_id: Uuid,
    },
    UnpinMessage {
        message_id: Uuid,
    },
    /// The room's pinned messages, newest pin first.
    ListPins {
        room_id: Uuid,
    },
    /// Room admins: until `unfreeze_room`, only admins post, edit, react and type.
    FreezeRoom {
        room_id: Uuid,
    },
    UnfreezeRoom {
        room_id: Uuid,
    },
    /// Room admins: a member's messages at least `seconds` apart (0: off); moderators and admins
    /// are exempt. A send too soon gets `rate_limited` with `retry_after_ms`.
    SetSlowMode {
        room_id: Uuid,
        #[schemars(range(min = 0, max = MAX_SLOW_MODE_SECS))]
        seconds: i32,
    },
    /// Blocks a user of the tenant (at most 1000): they can no longer open or write in a direct
    /// room with you, and their messages elsewhere reach you with `sender_blocked: true`.
    BlockUser {
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
    },
    UnblockUser {
        #[schemars(length(min = 1, max = MAX_ID_CHARS))]
        user_id: String,
    },
    /// The users you blocked, most recent first.
    ListBlocked,
    /// Reports a message of a room you are in to its moderators; reporting it again answers with
    /// your first report.
    ReportMessage {
        message_id: Uuid,
        #[schemars(length(min = 1, max = MAX_REASON_CHARS))]
        reason: String,
    },
    /// Moderators and admins of the room, or tenant admins: reports, newest first (at most 100).
    /// Without `room_id`: those of every room you moderate (every room, for tenant admins).
    ListReports {
        #[serde(default)]
        room_id: Option<Uuid>,
        /// `open` when absent.
        #[serde(default)]
        status: Option<ReportStatus>,
    },
    /// Moderators and admins of the room, or tenant admins: closes an open report, deleting its
    /// message if asked (which closes the message's other reports too).
    ResolveReport {
        report_id: Uuid,
        action: ReportAction,
    },
}

/// What resolving a report does.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportAction {
    /// Closes the report; the message stays.
    Dismiss,
    /// Deletes the message (as `delete_message` would, with its rules) and closes its reports.
    DeleteMessage,
}

impl ClientFrame {
    /// The `type` of the frame that answers this one, echoing its `request_id` (when it fails:
    /// `error`). Typing indicators get no answer but an error.
    pub fn reply(&self) -> Option<&'static str> {
        use ClientFrame as F;
        Some(match self {
            F::JoinRoom { .. } => "room_joined",
            F::LeaveRoom { .. } => "room_left",
            F::SendMessage { .. } => "message_sent",
            F::TypingStart { .. } | F::TypingStop { .. } => return None,
            F::MarkRead { .. } => "read_marked",
            F::CreateRoom { .. } => "room_created",
            F::GetHistory { .. } => "history",
            F::Ping => "pong",
            F::UpdateRoom { .. } => "room_updated",
            F::Invite { .. } => "invited",
            F::RemoveParticipant { .. } => "user_removed",
            F::SetRole { .. } => "role_changed",
            F::MuteUser { .. } => "user_muted",
            F::UnmuteUser { .. } => "user_unmuted",
            F::BanUser { .. } => "user_banned",
            F::UnbanUser { .. } => "user_unbanned",
            F::EditMessage { .. } => "message_edited",
            F::DeleteMessage { .. } => "message_deleted",
            F::GetEditHistory { .. } => "edit_history",
            F::AddReaction { .. } => "reaction_added",
            F::RemoveReaction { .. } => "reaction_removed",
            F::GetThread { .. } => "thread",
            F::GetReceipts { .. } => "receipts",
            F::GetUnread => "unread",
            F::ListRooms { .. } => "rooms",
            F::GetPresence { .. } => "presence_state",
            F::Announce { .. } => "announcement",
            F::RefreshToken { .. } => "token_refreshed",
            F::PinMessage { .. } => "message_pinned",
            F::UnpinMessage { .. } => "message_unpinned",
            F::ListPins { .. } => "pins",
            F::FreezeRoom { .. } => "room_frozen",
            F::UnfreezeRoom { .. } => "room_unfrozen",
            F::SetSlowMode { .. } => "slow_mode_set",
            F::BlockUser { .. } => "user_blocked",
            F::UnblockUser { .. } => "user_unblocked",
            F::ListBlocked => "blocked_users",
            F::ReportMessage { .. } => "message_reported",
            F::ListReports { .. } => "reports",
            F::ResolveReport { .. } => "report_resolved",
        })
    }

    /// The frame's `type`, as a metric names it.
    pub fn kind(&self) -> &'static str {
        use ClientFrame as F;
        match self {
            F::JoinRoom { .. } => "join_room",
            F::LeaveRoom { .. } => "leave_room",
            F::SendMessage { .. } => "send_message",
            F::TypingStart { .. } => "typing_start",
            F::TypingStop { .. } => "typing_stop",
            F::MarkRead { .. } => "mark_read",
            F::CreateRoom { .. } => "create_room",
            F::GetHistory { .. } => "get_history",
            F::Ping => "ping",
            F::UpdateRoom { .. } => "update_room",
            F::Invite { .. } => "invite",
            F::RemoveParticipant { .. } => "remove_participant",
            F::SetRole { .. } => "set_role",
            F::MuteUser { .. } => "mute_user",
            F::UnmuteUser { .. } => "unmute_user",
            F::BanUser { .. } => "ban_user",
            F::UnbanUser { .. } => "unban_user",
            F::EditMessage { .. } => "edit_message",
            F::DeleteMessage { .. } => "delete_message",
            F::GetEditHistory { .. } => "get_edit_history",
            F::AddReaction { .. } => "add_reaction",
            F::RemoveReaction { .. } => "remove_reaction",
            F::GetThread { .. } => "get_thread",
            F::GetReceipts { .. } => "get_receipts",
            F::GetUnread => "get_unread",
            F::ListRooms { .. } => "list_rooms",
            F::GetPresence { .. } => "get_presence",
            F::Announce { .. } => "announce",
            F::RefreshToken { .. } => "refresh_token",
            F::PinMessage { .. } => "pin_message",
            F::UnpinMessage { .. } => "unpin_message",
            F::ListPins { .. } => "list_pins",
            F::FreezeRoom { .. } => "freeze_room",
            F::UnfreezeRoom { .. } => "unfreeze_room",
            F::SetSlowMode { .. } => "set_slow_mode",
            F::BlockUser { .. } => "block_user",
            F::UnblockUser { .. } => "unblock_user",
            F::ListBlocked => "list_blocked",
            F::ReportMessage { .. } => "report_message",
            F::ListReports { .. } => "list_reports",
            F::ResolveReport { .. } => "resolve_report",
        }
    }
}

#[derive(Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
pub struct SendMessage {
    pub room_id: Uuid,
    /// Text messages need some non-blank content; image and file messages may leave it empty.
    #[schemars(length(max = MAX_CONTENT_CHARS))]
    pub content: String,
    /// `system` is the server's own.
    #[serde(default = "default_message_type")]
    pub message_type: MessageType,
    /// At least one for `image` and `file` messages (`image/*` ones for images).
    #[serde(default)]
    #[schemars(length(max = MAX_ATTACHMENTS))]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    #[schemars(length(max = MAX_MENTIONS), inner(length(min = 1, max = MAX_ID_CHARS)))]
    pub mentions: Vec<String>,
    /// The parent message: this one is a reply in its thread.
    #[serde(default)]
    pub reply_to: Option<Uuid>,
    /// The client's id for this message: sending it again returns the stored one instead of a copy.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_ID_CHARS))]
    pub client_msg_id: Option<String>,
}

fn default_message_type() -> MessageType {
    MessageType::Text
}

#[derive(Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
pub struct CreateRoom {
    /// Required but for direct rooms.
    #[serde(default)]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub name: Option<String>,
    pub room_type: RoomType,
    /// Exactly one other user for a direct room.
    #[serde(default)]
    #[schemars(length(max = MAX_INITIAL_MEMBERS), inner(length(min = 1, max = MAX_ID_CHARS)))]
    pub participants: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = MAX_DESCRIPTION_CHARS))]
    pub description: Option<String>,
    /// Direct and support rooms are always private.
    #[serde(default)]
    pub is_private: bool,
    /// The client's id for this creation: a retry with the same one answers with the room the
    /// first attempt created.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_ID_CHARS))]
    pub client_room_id: Option<String>,
}

/// History paging: `before` walks back from the newest, `after` walks forward (catch-up).
#[derive(Debug, Deserialize, Serialize, PartialEq, JsonSchema)]
pub struct HistoryRequest {
    pub room_id: Uuid,
    #[serde(default)]
    pub before: Option<Cursor>,
    #[serde(default)]
    pub after: Option<Cursor>,
    /// 50 when absent; outside 1-100 it is clamped.
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_HISTORY_PAGE))]
    pub limit: Option<u32>,
}

/// An opaque position in a room's history (the message's `seq`), sent as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor(pub i64);

/// Sent as a string of digits; a client may give a non-negative number instead.
impl JsonSchema for Cursor {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cursor".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An opaque position in a room's history (a message's `seq`), as a string of digits.",
            "type": "string",
            "pattern": "^[0-9]{1,19}$",
        })
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        let n = match Raw::deserialize(d)? {
            Raw::Number(n) => n,
            Raw::Text(s) => s.parse().map_err(|_| serde::de::Error::custom("cursor is not valid"))?,
        };
        if n < 0 {
            return Err(serde::de::Error::custom("cursor is not valid"));
        }
        Ok(Cursor(n))
    }
}

pub const MAX_HISTORY_PAGE: u32 = 100;
pub const DEFAULT_HISTORY_PAGE: u32 = 50;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("frame must be a JSON object with a string \"type\"")]
    MissingType,
    #[error("unknown frame type \"{0}\"")]
    UnknownType(String),
    #[error("invalid {frame} frame: {reason}")]
    InvalidFrame { frame: String, reason: String },
    #[error("frame is {0} bytes; the limit is {MAX_FRAME_BYTES}")]
    TooLarge(usize),
}

impl ProtocolError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::MissingType => ErrorCode::InvalidFrame,
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::InvalidFrame { .. } => ErrorCode::InvalidFrame,
            Self::TooLarge(_) => ErrorCode::FrameTooLarge,
        }
    }
}

/// The `code` of an `error` frame and of an HTTP error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON.
    InvalidJson,
    /// No string `type`, a field missing, of the wrong type or unknown.
    InvalidFrame,
    /// A `type` the server does not know.
    UnknownType,
    /// Over 128 KiB: the connection is closed.
    FrameTooLarge,
    /// A value outside what the service takes (lengths, counts, ids).
    ValidationError,
    NotFound,
    PermissionDenied,
    /// No valid token, or it expired during the session (the connection is then closed).
    Unauthorized,
    /// Too many frames, requests or connections: `retry_after_ms` says when to try again.
    RateLimited,
    /// Postgres or Redis is unreachable or slow, or the server is overloaded: retry shortly.
    ServiceUnavailable,
    InternalError,
    /// HTTP only: every route answers GET alone.
    MethodNotAllowed,
}

/// Lets tests and logs compare a code with its text.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        serde_json::to_value(self).is_ok_and(|v| v == *other)
    }
}

/// A parsed frame with the client's optional `request_id`, echoed on the reply.
#[derive(Debug)]
pub struct Inbound {
    pub frame: ClientFrame,
    pub request_id: Option<String>,
}

/// Reads the `request_id` of a frame even when the rest of it is bad, so errors can be correlated.
pub fn request_id_of(value: &Value) -> Option<String> {
    match value.get("request_id")? {
        Value::String(s) => Some(s.chars().take(128).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// API Gateway's limit for one WebSocket message.
pub const MAX_FRAME_BYTES: usize = 128 * 1024;

/// Fields every frame may carry besides its own.
const ENVELOPE_FIELDS: &[&str] = &["type", "request_id"];

pub fn parse(body: &str) -> Result<Inbound, (ProtocolError, Option<String>)> {
    if body.len() > MAX_FRAME_BYTES {
        return Err((ProtocolError::TooLarge(body.len()), None));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| (ProtocolError::InvalidJson(e.to_string()), None))?;
    let request_id = request_id_of(&value);
    if has_nul(&value) {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("?").replace('\0', "");
        let reason = "text must not contain NUL characters".into();
        return Err((ProtocolError::InvalidFrame { frame: kind, reason }, request_id));
    }
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err((ProtocolError::MissingType, request_id));
    };
    let unknown = format!("unknown variant `{kind}`");
    let kind: String = kind.chars().take(64).collect();
    let given: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    match serde_json::from_value::<ClientFrame>(value) {
        Ok(frame) => match unknown_field(&frame, &given) {
            Some(field) => {
                let reason = format!("unknown field `{field}`");
                Err((ProtocolError::InvalidFrame { frame: kind, reason }, request_id))
            }
            None => Ok(Inbound { frame, request_id }),
        },
        // serde names the tag it does not know; a nested unknown value (a room_type, say) is a bad frame.
        Err(e) if e.to_string().starts_with(&unknown) => Err((ProtocolError::UnknownType(kind), request_id)),
        Err(e) => Err((ProtocolError::InvalidFrame { frame: kind, reason: e.to_string() }, request_id)),
    }
}

/// Postgres text cannot hold NUL, so no string of a frame may.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A top-level field the frame's type does not have. Serializing the parsed frame yields every
/// field it knows (absent options as null), so this needs no list kept beside the types.
fn unknown_field(frame: &ClientFrame, given: &[String]) -> Option<String> {
    let known = serde_json::to_value(frame).expect("client frames serialize");
    given.iter().find(|k| !ENVELOPE_FIELDS.contains(&k.as_str()) && known.get(k.as_str()).is_none()).cloned()
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// Frames the server sends. Each is fanned out as JSON text.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub enum ServerFrame {
    /// The first frame of every connection.
    Connection {
        #[schemars(extend("const" = "connected"))]
        status: &'static str,
        connection_id: String,
        user_id: String,
        tenant_id: String,
        display_name: String,
        server_time: DateTime<Utc>,
        /// The rooms with something unread or a mention.
        unread: Vec<Unread>,
    },
    /// The answer to a frame that failed, with its `request_id`.
    Error {
        code: ErrorCode,
        message: String,
        /// With `rate_limited`: when to try again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    RoomCreated {
        room: Room,
        participants: Vec<Participant>,
    },
    RoomJoined {
        room: Room,
        participants: Vec<Participant>,
    },
    RoomLeft {
        room_id: Uuid,
    },
    UserJoined {
        room_id: Uuid,
        user_id: String,
        display_name: String,
    },
    UserLeft {
        room_id: Uuid,
        user_id: String,
    },
    MessageSent {
        message: Message,
        /// True when the client's `client_msg_id` was already stored and this is that message.
        duplicate: bool,
    },
    /// The same bytes for every recipient: clients count new messages themselves.
    NewMessage {
        message: Message,
    },
    TypingStart {
        room_id: Uuid,
        user_id: String,
        display_name: String,
    },
    TypingStop {
        room_id: Uuid,
        user_id: String,
    },
    ReadMarked {
        room_id: Uuid,
        message_ids: Vec<Uuid>,
        unread_count: i32,
        mention_count: i32,
        capped: bool,
    },
    MessagesRead {
        room_id: Uuid,
        user_id: String,
        message_ids: Vec<Uuid>,
        read_at: DateTime<Utc>,
    },
    History {
        room_id: Uuid,
        messages: Vec<Message>,
        has_more: bool,
        next_cursor: Option<Cursor>,
    },
    Presence {
        user_id: String,
        status: PresenceStatus,
        last_seen: DateTime<Utc>,
    },
    Pong,
    TokenRefreshed {
        expires_at: DateTime<Utc>,
    },
    RoomUpdated {
        room: Room,
    },
    /// To users added to a room by someone else.
    AddedToRoom {
        room: Room,
        participants: Vec<Participant>,
        added_by: String,
    },
    Invited {
        room_id: Uuid,
        user_ids: Vec<String>,
    },
    UserRemoved {
        room_id: Uuid,
        user_id: String,
        by: String,
    },
    RoleChanged {
        room_id: Uuid,
        user_id: String,
        role: Role,
        by: String,
    },
    UserMuted {
        room_id: Uuid,
        user_id: String,
        until: DateTime<Utc>,
        by: String,
    },
    UserUnmuted {
        room_id: Uuid,
        user_id: String,
        by: String,
    },
    UserBanned {
        room_id: Uuid,
        user_id: String,
        by: String,
        reason: Option<String>,
    },
    UserUnbanned {
        room_id: Uuid,
        user_id: String,
        by: String,
    },
    MessageEdited {
        message: Message,
    },
    MessageDeleted {
        room_id: Uuid,
        message_id: Uuid,
        deleted_by: String,
        deleted_at: DateTime<Utc>,
    },
    EditHistory {
        message_id: Uuid,
        current: Message,
        versions: Vec<Edit>,
    },
    ReactionAdded {
        room_id: Uuid,
        message_id: Uuid,
        user_id: String,
        emoji: String,
        reactions: Vec<Reaction>,
    },
    ReactionRemoved {
        room_id: Uuid,
        message_id: Uuid,
        user_id: String,
        emoji: String,
        reactions: Vec<Reaction>,
    },
    Thread {
        parent: Message,
        replies: Vec<Message>,
        has_more: bool,
        next_cursor: Option<Cursor>,
    },
    Receipts {
        message_id: Uuid,
        delivered: Vec<Receipt>,
        read: Vec<Receipt>,
    },
    Unread {
        rooms: Vec<Unread>,
    },
    Rooms {
        rooms: Vec<RoomSummary>,
    },
    PresenceState {
        users: Vec<PresenceInfo>,
    },
    /// Published on `user:{id}` for each member a message mentions.
    Mention {
        room_id: Uuid,
        message: Message,
    },
    Announcement {
        content: String,
        from: String,
        sent_at: DateTime<Utc>,
    },
    MessagePinned {
        room_id: Uuid,
        pin: Pin,
    },
    /// Unpinned by a moderator, or because the message was deleted.
    MessageUnpinned {
        room_id: Uuid,
        message_id: Uuid,
        by: String,
    },
    Pins {
        room_id: Uuid,
        pins: Vec<Pin>,
    },
    RoomFrozen {
        room_id: Uuid,
        by: String,
    },
    RoomUnfrozen {
        room_id: Uuid,
        by: String,
    },
    SlowModeSet {
        room_id: Uuid,
        seconds: i32,
        by: String,
    },
    /// To the blocker's connections.
    UserBlocked {
        user_id: String,
        blocked_at: DateTime<Utc>,
    },
    UserUnblocked {
        user_id: String,
    },
    BlockedUsers {
        users: Vec<BlockedUser>,
    },
    /// To the reporter, and to the room's moderators and admins online.
    MessageReported {
        report: Report,
    },
    Reports {
        reports: Vec<Report>,
    },
    /// To the resolver, and to the room's moderators and admins online.
    ReportResolved {
        report: Report,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
pub struct PresenceInfo {
    pub user_id: String,
    pub status: PresenceStatus,
    /// When they were last seen: now for online users, unknown for users never seen.
    pub last_seen: Option<DateTime<Utc>>,
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }

    /// Serializes the frame as a reply, echoing the client's `request_id` when it sent one.
    pub fn reply_json(&self, request_id: Option<&str>) -> String {
        let mut value = serde_json::to_value(self).expect("server frames always serialize");
        if let (Some(id), Value::Object(map)) = (request_id, &mut value) {
            map.insert("request_id".into(), Value::String(id.into()));
        }
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(s: &str) -> ClientFrame {
        parse(s).map_err(|(e, _)| e).unwrap().frame
    }

    fn parse_err(s: &str) -> ProtocolError {
        parse(s).map(|i| i.frame).unwrap_err().0
    }

    const ROOM: &str = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5";

    #[test]
    fn spec_frames_parse_verbatim() {
        let send = format!(
            r#"{{"type":"send_message","room_id":"{ROOM}","content":"Hello, world!","message_type":"text","attachments":[],"mentions":["user-id"]}}"#
        );
        match parse_ok(&send) {
            ClientFrame::SendMessage(m) => {
                assert_eq!(m.content, "Hello, world!");
                assert_eq!(m.mentions, vec!["user-id".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let create = r#"{"type":"create_room","name":"Project Discussion","room_type":"group","participants":["user-id-1","user-id-2"],"description":"Discussion about the project","is_private":false}"#;
        assert!(matches!(parse_ok(create), ClientFrame::CreateRoom(CreateRoom { room_type: RoomType::Group, .. })));
        assert!(matches!(
            parse_ok(&format!(r#"{{"type":"join_room","room_id":"{ROOM}"}}"#)),
            ClientFrame::JoinRoom { .. }
        ));
        assert!(matches!(
            parse_ok(&format!(r#"{{"type":"typing_start","room_id":"{ROOM}"}}"#)),
            ClientFrame::TypingStart { .. }
        ));
        let read = format!(r#"{{"type":"mark_read","room_id":"{ROOM}","message_ids":["{ROOM}"]}}"#);
        assert!(matches!(parse_ok(&read), ClientFrame::MarkRead { message_ids, .. } if message_ids.len() == 1));
    }

    #[test]
    fn bad_frames_get_precise_errors() {
        assert_eq!(parse_err("{not json").code(), "invalid_json");
        assert_eq!(parse_err("[1,2]"), ProtocolError::MissingType);
        assert_eq!(parse_err(r#"{"type":"launch_rockets"}"#), ProtocolError::UnknownType("launch_rockets".into()));
        assert_eq!(parse_err(r#"{"type":"join_room","room_id":"not-a-uuid"}"#).code(), "invalid_frame");
        assert_eq!(
            parse_err(r#"{"type":"send_message","room_id":"6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"}"#).code(),
            "invalid_frame"
        );
    }

    #[test]
    fn unknown_fields_and_oversized_frames_are_refused() {
        let spoof = format!(r#"{{"type":"send_message","room_id":"{ROOM}","content":"hi","sender_id":"alice"}}"#);
        assert_eq!(
            parse_err(&spoof),
            ProtocolError::InvalidFrame { frame: "send_message".into(), reason: "unknown field `sender_id`".into() }
        );
        // Optional fields left out, or given as null, are known.
        let sparse = format!(r#"{{"type":"get_history","room_id":"{ROOM}","before":null,"request_id":"r"}}"#);
        assert!(parse(&sparse).is_ok());
        let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
        assert_eq!(parse_err(&huge).code(), "frame_too_large");
        let nul = format!(r#"{{"type":"send_message","room_id":"{ROOM}","content":"a\u0000b"}}"#);
        assert_eq!(parse_err(&nul).code(), "invalid_frame");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse_err(&deep).code(), "invalid_json");
    }

    #[test]
    fn request_id_survives_errors_and_is_echoed() {
        let (_, id) = parse(r#"{"type":"nope","request_id":"r1"}"#).unwrap_err();
        assert_eq!(id.as_deref(), Some("r1"));
        let json = ServerFrame::Pong.reply_json(Some("r1"));
        assert_eq!(json, r#"{"request_id":"r1","type":"pong"}"#);
    }

    #[test]
    fn cursors_accept_strings_and_numbers() {
        let h = format!(r#"{{"type":"get_history","room_id":"{ROOM}","before":"42","limit":10}}"#);
        assert!(matches!(parse_ok(&h), ClientFrame::GetHistory(HistoryRequest { before: Some(Cursor(42)), .. })));
        let h = format!(r#"{{"type":"get_messages","room_id":"{ROOM}","after":7}}"#);
        assert!(matches!(parse_ok(&h), ClientFrame::GetHistory(HistoryRequest { after: Some(Cursor(7)), .. })));
        assert_eq!(
            parse_err(&format!(r#"{{"type":"get_history","room_id":"{ROOM}","before":"x"}}"#)).code(),
            "invalid_frame"
        );
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text at all: a frame or a precise error, never a panic.
            #[test]
            fn any_text_parses_or_errors(body in any::<String>()) {
                let _ = parse(&body);
            }

            /// Frame-shaped JSON with every known type and arbitrary field values.
            #[test]
            fn frame_shaped_json_parses_or_errors(
                kind in prop::sample::select(vec!["send_message", "join_room", "mark_read", "create_room",
                    "get_history", "add_reaction", "mute_user", "edit_message", "nope", ""]),
                fields in prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..6),
            ) {
                let mut frame = serde_json::Map::new();
                frame.insert("type".into(), Value::String(kind.into()));
                frame.extend(fields);
                let _ = parse(&Value::Object(frame).to_string());
            }
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                ".*".prop_map(Value::String),
                Just(Value::String("6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5".into())),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }
    }
}
