// Generated from docs/api/protocol.schema.json by `npm run generate`: do not edit.

/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "RoomType".
 */
export type RoomType = "direct" | "group" | "support" | "broadcast";
/**
 * Frames a client sends. `type` selects the variant; field names follow the product spec.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientFrame".
 */
export type ClientFrame =
  | ClientJoinRoom
  | ClientLeaveRoom
  | ClientSendMessage
  | ClientTypingStart
  | ClientTypingStop
  | ClientMarkRead
  | ClientCreateRoom
  | ClientGetHistory
  | ClientPing
  | ClientUpdateRoom
  | ClientInvite
  | ClientRemoveParticipant
  | ClientSetRole
  | ClientMuteUser
  | ClientUnmuteUser
  | ClientBanUser
  | ClientUnbanUser
  | ClientEditMessage
  | ClientDeleteMessage
  | ClientGetEditHistory
  | ClientAddReaction
  | ClientRemoveReaction
  | ClientGetThread
  | ClientGetReceipts
  | ClientGetUnread
  | ClientListRooms
  | ClientGetPresence
  | ClientAnnounce
  | ClientRefreshToken
  | ClientPinMessage
  | ClientUnpinMessage
  | ClientListPins
  | ClientFreezeRoom
  | ClientUnfreezeRoom
  | ClientSetSlowMode
  | ClientBlockUser
  | ClientUnblockUser
  | ClientListBlocked
  | ClientReportMessage
  | ClientListReports
  | ClientResolveReport;
/**
 * An opaque position in a room's history (a message's `seq`), as a string of digits.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Cursor".
 */
export type Cursor = string;
/**
 * Ordered by power: admin > moderator > member.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Role".
 */
export type Role = "member" | "moderator" | "admin";
/**
 * A report is `open` until a moderator dismisses it or deletes its message.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ReportStatus".
 */
export type ReportStatus = "open" | "dismissed" | "deleted";
/**
 * What resolving a report does.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ReportAction".
 */
export type ReportAction = "dismiss" | "delete_message";
/**
 * The events a tenant can subscribe to.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Event".
 */
export type Event = "message.new" | "message.flagged" | "member.banned";
/**
 * Frames the server sends. Each is fanned out as JSON text.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerFrame".
 */
export type ServerFrame =
  | ServerConnection
  | ServerError
  | ServerRoomCreated
  | ServerRoomJoined
  | ServerRoomLeft
  | ServerUserJoined
  | ServerUserLeft
  | ServerMessageSent
  | ServerNewMessage
  | ServerTypingStart
  | ServerTypingStop
  | ServerReadMarked
  | ServerMessagesRead
  | ServerHistory
  | ServerPresence
  | ServerPong
  | ServerTokenRefreshed
  | ServerRoomUpdated
  | ServerAddedToRoom
  | ServerInvited
  | ServerUserRemoved
  | ServerRoleChanged
  | ServerUserMuted
  | ServerUserUnmuted
  | ServerUserBanned
  | ServerUserUnbanned
  | ServerMessageEdited
  | ServerMessageDeleted
  | ServerEditHistory
  | ServerReactionAdded
  | ServerReactionRemoved
  | ServerThread
  | ServerReceipts
  | ServerUnread
  | ServerRooms
  | ServerPresenceState
  | ServerMention
  | ServerAnnouncement
  | ServerMessagePinned
  | ServerMessageUnpinned
  | ServerPins
  | ServerRoomFrozen
  | ServerRoomUnfrozen
  | ServerSlowModeSet
  | ServerUserBlocked
  | ServerUserUnblocked
  | ServerBlockedUsers
  | ServerMessageReported
  | ServerReports
  | ServerReportResolved;
/**
 * The `code` of an `error` frame and of an HTTP error body.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ErrorCode".
 */
export type ErrorCode =
  | ("not_found" | "permission_denied" | "internal_error")
  | "invalid_json"
  | "invalid_frame"
  | "unknown_type"
  | "frame_too_large"
  | "validation_error"
  | "unauthorized"
  | "rate_limited"
  | "service_unavailable"
  | "method_not_allowed";
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "MessageType".
 */
export type MessageType = "text" | "image" | "file" | "system";
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "PresenceStatus".
 */
export type PresenceStatus = "online" | "offline";
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "HealthStatus".
 */
export type HealthStatus = "healthy" | "degraded";

/**
 * The frames of the WebSocket API and the bodies of the HTTP API, derived from the server's types.
 */
export interface ChatProtocol {
  [k: string]: unknown | undefined;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Attachment".
 */
export interface Attachment {
  mime_type: string;
  name: string;
  /**
   * Bytes.
   */
  size: number;
  /**
   * A link to the file, stored elsewhere.
   */
  url: string;
}
/**
 * The users the caller blocked, most recent first.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "BlockedList".
 */
export interface BlockedList {
  users: BlockedUser[];
}
/**
 * A user the caller blocked.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "BlockedUser".
 */
export interface BlockedUser {
  blocked_at: string;
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientAddReaction".
 */
export interface ClientAddReaction {
  emoji: string;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "add_reaction";
}
/**
 * Tenant admins only: to every connection of the tenant.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientAnnounce".
 */
export interface ClientAnnounce {
  content: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "announce";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientBanUser".
 */
export interface ClientBanUser {
  reason?: string | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "ban_user";
  user_id: string;
}
/**
 * Blocks a user of the tenant (at most 1000): they can no longer open or write in a direct
 * room with you, and their messages elsewhere reach you with `sender_blocked: true`.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientBlockUser".
 */
export interface ClientBlockUser {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "block_user";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientCreateRoom".
 */
export interface ClientCreateRoom {
  /**
   * The client's id for this creation: a retry with the same one answers with the room the
   * first attempt created.
   */
  client_room_id?: string | null;
  description?: string | null;
  /**
   * Direct and support rooms are always private.
   */
  is_private?: boolean;
  /**
   * Required but for direct rooms.
   */
  name?: string | null;
  /**
   * Exactly one other user for a direct room.
   *
   * @maxItems 1000
   */
  participants?: string[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_type: RoomType;
  type: "create_room";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientDeleteMessage".
 */
export interface ClientDeleteMessage {
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "delete_message";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientEditMessage".
 */
export interface ClientEditMessage {
  content: string;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "edit_message";
}
/**
 * Join a public room (or one you were invited to) and receive its events.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientJoinRoom".
 */
export interface ClientJoinRoom {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "join_room";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientLeaveRoom".
 */
export interface ClientLeaveRoom {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "leave_room";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientSendMessage".
 */
export interface ClientSendMessage {
  /**
   * At least one for `image` and `file` messages (`image/*` ones for images).
   *
   * @maxItems 10
   */
  attachments?:
    | []
    | [Attachment]
    | [Attachment, Attachment]
    | [Attachment, Attachment, Attachment]
    | [Attachment, Attachment, Attachment, Attachment]
    | [Attachment, Attachment, Attachment, Attachment, Attachment]
    | [Attachment, Attachment, Attachment, Attachment, Attachment, Attachment]
    | [Attachment, Attachment, Attachment, Attachment, Attachment, Attachment, Attachment]
    | [Attachment, Attachment, Attachment, Attachment, Attachment, Attachment, Attachment, Attachment]
    | [Attachment, Attachment, Attachment, Attachment, Attachment, Attachment, Attachment, Attachment, Attachment]
    | [
        Attachment,
        Attachment,
        Attachment,
        Attachment,
        Attachment,
        Attachment,
        Attachment,
        Attachment,
        Attachment,
        Attachment
      ];
  /**
   * The client's id for this message: sending it again returns the stored one instead of a copy.
   */
  client_msg_id?: string | null;
  /**
   * Text messages need some non-blank content; image and file messages may leave it empty.
   */
  content: string;
  /**
   * @maxItems 50
   */
  mentions?: string[];
  /**
   * `system` is the server's own.
   */
  message_type?: "text" | "image" | "file" | "system";
  /**
   * The parent message: this one is a reply in its thread.
   */
  reply_to?: string | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "send_message";
}
/**
 * Others in the room see `typing_start` until `typing_stop` or the indicator expires.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientTypingStart".
 */
export interface ClientTypingStart {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "typing_start";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientTypingStop".
 */
export interface ClientTypingStop {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "typing_stop";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientMarkRead".
 */
export interface ClientMarkRead {
  /**
   * Empty means everything in the room up to now.
   *
   * @maxItems 100
   */
  message_ids?: string[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "mark_read";
}
/**
 * `get_messages` is accepted as another name for it.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientGetHistory".
 */
export interface ClientGetHistory {
  after?: Cursor | null;
  before?: Cursor | null;
  /**
   * 50 when absent; outside 1-100 it is clamped.
   */
  limit?: number | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "get_history";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientPing".
 */
export interface ClientPing {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "ping";
}
/**
 * Room admins only; absent fields stay as they are.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientUpdateRoom".
 */
export interface ClientUpdateRoom {
  description?: string | null;
  is_private?: boolean | null;
  name?: string | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "update_room";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientInvite".
 */
export interface ClientInvite {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "invite";
  /**
   * @maxItems 100
   */
  user_ids: string[];
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientRemoveParticipant".
 */
export interface ClientRemoveParticipant {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "remove_participant";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientSetRole".
 */
export interface ClientSetRole {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  role: Role;
  room_id: string;
  type: "set_role";
  user_id: string;
}
/**
 * Without `duration_seconds` the mute lasts an hour.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientMuteUser".
 */
export interface ClientMuteUser {
  duration_seconds?: number | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "mute_user";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientUnmuteUser".
 */
export interface ClientUnmuteUser {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "unmute_user";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientUnbanUser".
 */
export interface ClientUnbanUser {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "unban_user";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientGetEditHistory".
 */
export interface ClientGetEditHistory {
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "get_edit_history";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientRemoveReaction".
 */
export interface ClientRemoveReaction {
  emoji: string;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "remove_reaction";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientGetThread".
 */
export interface ClientGetThread {
  after?: Cursor | null;
  /**
   * Outside 1-100 it is clamped.
   */
  limit?: number | null;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "get_thread";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientGetReceipts".
 */
export interface ClientGetReceipts {
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "get_receipts";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientGetUnread".
 */
export interface ClientGetUnread {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "get_unread";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientListRooms".
 */
export interface ClientListRooms {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_type?: RoomType | null;
  type: "list_rooms";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientGetPresence".
 */
export interface ClientGetPresence {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "get_presence";
  /**
   * @maxItems 100
   */
  user_ids: string[];
}
/**
 * A fresh token for the same user and tenant, before the connection's one expires.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientRefreshToken".
 */
export interface ClientRefreshToken {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  token: string;
  type: "refresh_token";
}
/**
 * Moderators and admins: pins a message of the room (a room holds at most 50 pins).
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientPinMessage".
 */
export interface ClientPinMessage {
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "pin_message";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientUnpinMessage".
 */
export interface ClientUnpinMessage {
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "unpin_message";
}
/**
 * The room's pinned messages, newest pin first.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientListPins".
 */
export interface ClientListPins {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "list_pins";
}
/**
 * Room admins: until `unfreeze_room`, only admins post, edit, react and type.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientFreezeRoom".
 */
export interface ClientFreezeRoom {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "freeze_room";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientUnfreezeRoom".
 */
export interface ClientUnfreezeRoom {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "unfreeze_room";
}
/**
 * Room admins: a member's messages at least `seconds` apart (0: off); moderators and admins
 * are exempt. A send too soon gets `rate_limited` with `retry_after_ms`.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientSetSlowMode".
 */
export interface ClientSetSlowMode {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  seconds: number;
  type: "set_slow_mode";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientUnblockUser".
 */
export interface ClientUnblockUser {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "unblock_user";
  user_id: string;
}
/**
 * The users you blocked, most recent first.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientListBlocked".
 */
export interface ClientListBlocked {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "list_blocked";
}
/**
 * Reports a message of a room you are in to its moderators; reporting it again answers with
 * your first report.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientReportMessage".
 */
export interface ClientReportMessage {
  message_id: string;
  reason: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "report_message";
}
/**
 * Moderators and admins of the room, or tenant admins: reports, newest first (at most 100).
 * Without `room_id`: those of every room you moderate (every room, for tenant admins).
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientListReports".
 */
export interface ClientListReports {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id?: string | null;
  /**
   * `open` when absent.
   */
  status?: ReportStatus | null;
  type: "list_reports";
}
/**
 * Moderators and admins of the room, or tenant admins: closes an open report, deleting its
 * message if asked (which closes the message's other reports too).
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ClientResolveReport".
 */
export interface ClientResolveReport {
  action: ReportAction;
  report_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "resolve_report";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Deleted".
 */
export interface Deleted {
  deleted: boolean;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "DevToken".
 */
export interface DevToken {
  /**
   * A JWT valid for 24 hours.
   */
  token: string;
}
/**
 * `POST /api/v1/dev/token` (local gateway with `DEV_TOKENS`).
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "DevTokenRequest".
 */
export interface DevTokenRequest {
  /**
   * The display name; the user id when absent or blank.
   */
  name?: string | null;
  tenant_id: string;
  user_id: string;
}
/**
 * One earlier version of an edited message.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Edit".
 */
export interface Edit {
  content: string;
  edited_at: string;
  edited_by: string;
  version: number;
}
/**
 * `PUT /api/v1/chat/webhook`: all events, and a new random secret, unless given.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "EndpointRequest".
 */
export interface EndpointRequest {
  events: Event[] | null;
  /**
   * The HMAC key of the signatures.
   */
  secret: string | null;
  /**
   * `https://` to a public host (`WEBHOOK_ALLOW_HTTP=1`: also `http://` and this machine).
   */
  url: string;
}
/**
 * What a subscriber receives. User ids are only unique within a tenant, so the tenant rides along.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Envelope".
 */
export interface Envelope {
  channel: string;
  event: ServerFrame;
  published_at: string;
  tenant_id: string;
}
/**
 * The first frame of every connection.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerConnection".
 */
export interface ServerConnection {
  connection_id: string;
  display_name: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  server_time: string;
  status: "connected";
  tenant_id: string;
  type: "connection";
  /**
   * The rooms with something unread or a mention.
   */
  unread: Unread[];
  user_id: string;
}
/**
 * A member's unread state in one room, counted from their read position.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Unread".
 */
export interface Unread {
  /**
   * A count reached `UNREAD_CAP`: there are at least that many, maybe more.
   */
  capped: boolean;
  last_room_seq: number;
  last_seq: number;
  mention_count: number;
  room_id: string;
  unread_count: number;
}
/**
 * The answer to a frame that failed, with its `request_id`.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerError".
 */
export interface ServerError {
  code: ErrorCode;
  message: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  /**
   * With `rate_limited`: when to try again.
   */
  retry_after_ms?: number | null;
  type: "error";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoomCreated".
 */
export interface ServerRoomCreated {
  participants: Participant[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room: Room;
  type: "room_created";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Participant".
 */
export interface Participant {
  display_name: string | null;
  joined_at: string;
  role: Role;
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Room".
 */
export interface Room {
  created_at: string;
  created_by: string;
  description: string | null;
  /**
   * Frozen: only the room's admins post, edit, react and type.
   */
  frozen: boolean;
  id: string;
  is_private: boolean;
  name: string;
  room_type: RoomType;
  /**
   * A member's messages are at least this far apart (0: off); moderators and admins are exempt.
   */
  slow_mode_seconds: number;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoomJoined".
 */
export interface ServerRoomJoined {
  participants: Participant[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room: Room;
  type: "room_joined";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoomLeft".
 */
export interface ServerRoomLeft {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "room_left";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserJoined".
 */
export interface ServerUserJoined {
  display_name: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_joined";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserLeft".
 */
export interface ServerUserLeft {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_left";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessageSent".
 */
export interface ServerMessageSent {
  /**
   * True when the client's `client_msg_id` was already stored and this is that message.
   */
  duplicate: boolean;
  message: Message;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "message_sent";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Message".
 */
export interface Message {
  attachments: Attachment[];
  client_msg_id?: string | null;
  content: string;
  created_at: string;
  deleted_at: string | null;
  deleted_by: string | null;
  edited_at: string | null;
  id: string;
  mentions: string[];
  message_type: MessageType;
  /**
   * Counts per emoji and who reacted, in first-reaction order.
   */
  reactions: Reaction[];
  reply_count: number;
  reply_to: string | null;
  room_id: string;
  /**
   * The message's number in its room: 1, 2, 3, ... without gaps, so a client that sees
   * `room_seq` jump knows it missed messages (0 for messages archived before it existed).
   */
  room_seq: number;
  /**
   * Present, and true, for a reader who blocked the sender: a client hides it or shows it folded.
   */
  sender_blocked?: boolean;
  sender_id: string;
  sender_name: string | null;
  /**
   * The cursor position of the message in its room's history. Within a room, messages
   * commit in `seq` order, so history `after` a seen `seq` holds everything after it.
   */
  seq: number;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Reaction".
 */
export interface Reaction {
  count: number;
  emoji: string;
  users: string[];
}
/**
 * The same bytes for every recipient: clients count new messages themselves.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerNewMessage".
 */
export interface ServerNewMessage {
  message: Message;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "new_message";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerTypingStart".
 */
export interface ServerTypingStart {
  display_name: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "typing_start";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerTypingStop".
 */
export interface ServerTypingStop {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "typing_stop";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerReadMarked".
 */
export interface ServerReadMarked {
  capped: boolean;
  mention_count: number;
  message_ids: string[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "read_marked";
  unread_count: number;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessagesRead".
 */
export interface ServerMessagesRead {
  message_ids: string[];
  read_at: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "messages_read";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerHistory".
 */
export interface ServerHistory {
  has_more: boolean;
  messages: Message[];
  next_cursor: Cursor | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "history";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerPresence".
 */
export interface ServerPresence {
  last_seen: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  status: PresenceStatus;
  type: "presence";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerPong".
 */
export interface ServerPong {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "pong";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerTokenRefreshed".
 */
export interface ServerTokenRefreshed {
  expires_at: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "token_refreshed";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoomUpdated".
 */
export interface ServerRoomUpdated {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room: Room;
  type: "room_updated";
}
/**
 * To users added to a room by someone else.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerAddedToRoom".
 */
export interface ServerAddedToRoom {
  added_by: string;
  participants: Participant[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room: Room;
  type: "added_to_room";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerInvited".
 */
export interface ServerInvited {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "invited";
  user_ids: string[];
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserRemoved".
 */
export interface ServerUserRemoved {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_removed";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoleChanged".
 */
export interface ServerRoleChanged {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  role: Role;
  room_id: string;
  type: "role_changed";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserMuted".
 */
export interface ServerUserMuted {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_muted";
  until: string;
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserUnmuted".
 */
export interface ServerUserUnmuted {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_unmuted";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserBanned".
 */
export interface ServerUserBanned {
  by: string;
  reason: string | null;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_banned";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserUnbanned".
 */
export interface ServerUserUnbanned {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "user_unbanned";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessageEdited".
 */
export interface ServerMessageEdited {
  message: Message;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "message_edited";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessageDeleted".
 */
export interface ServerMessageDeleted {
  deleted_at: string;
  deleted_by: string;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "message_deleted";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerEditHistory".
 */
export interface ServerEditHistory {
  current: Message;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "edit_history";
  versions: Edit[];
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerReactionAdded".
 */
export interface ServerReactionAdded {
  emoji: string;
  message_id: string;
  reactions: Reaction[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "reaction_added";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerReactionRemoved".
 */
export interface ServerReactionRemoved {
  emoji: string;
  message_id: string;
  reactions: Reaction[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "reaction_removed";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerThread".
 */
export interface ServerThread {
  has_more: boolean;
  next_cursor: Cursor | null;
  parent: Message;
  replies: Message[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "thread";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerReceipts".
 */
export interface ServerReceipts {
  delivered: Receipt[];
  message_id: string;
  read: Receipt[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "receipts";
}
/**
 * Who got or read a message, and when.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Receipt".
 */
export interface Receipt {
  at: string;
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUnread".
 */
export interface ServerUnread {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  rooms: Unread[];
  type: "unread";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRooms".
 */
export interface ServerRooms {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  rooms: RoomSummary[];
  type: "rooms";
}
/**
 * A room as one user sees it in a listing.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "RoomSummary".
 */
export interface RoomSummary {
  /**
   * A count reached `UNREAD_CAP`: there are at least that many, maybe more.
   */
  capped: boolean;
  last_room_seq: number;
  last_seq: number;
  mention_count: number;
  participant_count: number;
  /**
   * None for a support agent looking at a support room they have not joined.
   */
  role: Role | null;
  room: Room;
  room_id: string;
  unread_count: number;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerPresenceState".
 */
export interface ServerPresenceState {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "presence_state";
  users: PresenceInfo[];
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "PresenceInfo".
 */
export interface PresenceInfo {
  /**
   * When they were last seen: now for online users, unknown for users never seen.
   */
  last_seen: string | null;
  status: PresenceStatus;
  user_id: string;
}
/**
 * Published on `user:{id}` for each member a message mentions.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMention".
 */
export interface ServerMention {
  message: Message;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "mention";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerAnnouncement".
 */
export interface ServerAnnouncement {
  content: string;
  from: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  sent_at: string;
  type: "announcement";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessagePinned".
 */
export interface ServerMessagePinned {
  pin: Pin;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "message_pinned";
}
/**
 * A pinned message, as it is now (edits show).
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Pin".
 */
export interface Pin {
  message: Message;
  pinned_at: string;
  pinned_by: string;
}
/**
 * Unpinned by a moderator, or because the message was deleted.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessageUnpinned".
 */
export interface ServerMessageUnpinned {
  by: string;
  message_id: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "message_unpinned";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerPins".
 */
export interface ServerPins {
  pins: Pin[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "pins";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoomFrozen".
 */
export interface ServerRoomFrozen {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "room_frozen";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerRoomUnfrozen".
 */
export interface ServerRoomUnfrozen {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  type: "room_unfrozen";
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerSlowModeSet".
 */
export interface ServerSlowModeSet {
  by: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  room_id: string;
  seconds: number;
  type: "slow_mode_set";
}
/**
 * To the blocker's connections.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserBlocked".
 */
export interface ServerUserBlocked {
  blocked_at: string;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "user_blocked";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerUserUnblocked".
 */
export interface ServerUserUnblocked {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "user_unblocked";
  user_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerBlockedUsers".
 */
export interface ServerBlockedUsers {
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "blocked_users";
  users: BlockedUser[];
}
/**
 * To the reporter, and to the room's moderators and admins online.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerMessageReported".
 */
export interface ServerMessageReported {
  report: Report;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "message_reported";
}
/**
 * A member's report of a message, seen by the room's moderators and admins and tenant admins.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Report".
 */
export interface Report {
  created_at: string;
  id: string;
  /**
   * The message as it is now; absent once it has been archived.
   */
  message: Message | null;
  message_id: string;
  reason: string;
  reporter: string;
  resolved_at: string | null;
  resolved_by: string | null;
  room_id: string;
  status: ReportStatus;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerReports".
 */
export interface ServerReports {
  reports: Report[];
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "reports";
}
/**
 * To the resolver, and to the room's moderators and admins online.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ServerReportResolved".
 */
export interface ServerReportResolved {
  report: Report;
  /**
   * The client's id for a request, echoed on its reply (at most 128 characters are kept).
   */
  request_id?: string | number;
  type: "report_resolved";
}
/**
 * Every error answer: `retry_after_ms` with `rate_limited` and an overload refusal.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ErrorBody".
 */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retry_after_ms?: number | null;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Health".
 */
export interface Health {
  database_connected: boolean;
  redis_connected: boolean;
  status: HealthStatus;
  version: string;
}
/**
 * A page of a room's history, as the `history` frame has it.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "HistoryPage".
 */
export interface HistoryPage {
  has_more: boolean;
  messages: Message[];
  next_cursor: Cursor | null;
  room_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Metrics".
 */
export interface Metrics {
  active_connections: number;
  /**
   * Users who sent a message or were seen online in the last 24 hours.
   */
  active_users_24h: number;
  rooms: RoomMetrics[];
  tenant_id: string;
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "RoomMetrics".
 */
export interface RoomMetrics {
  /**
   * Messages not deleted.
   */
  messages: number;
  name: string;
  participants: number;
  room_id: string;
  room_type: string;
  /**
   * Unread messages summed over the room's members, each member's count capped as clients see it.
   */
  unread: number;
}
/**
 * A room's pinned messages, newest pin first, as the `pins` frame has them.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "PinList".
 */
export interface PinList {
  pins: Pin[];
  room_id: string;
}
/**
 * The `type` of the frame that answers each client frame (typing indicators get none).
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Replies".
 */
export interface Replies {
  add_reaction: "reaction_added";
  announce: "announcement";
  ban_user: "user_banned";
  block_user: "user_blocked";
  create_room: "room_created";
  delete_message: "message_deleted";
  edit_message: "message_edited";
  freeze_room: "room_frozen";
  get_edit_history: "edit_history";
  get_history: "history";
  get_presence: "presence_state";
  get_receipts: "receipts";
  get_thread: "thread";
  get_unread: "unread";
  invite: "invited";
  join_room: "room_joined";
  leave_room: "room_left";
  list_blocked: "blocked_users";
  list_pins: "pins";
  list_reports: "reports";
  list_rooms: "rooms";
  mark_read: "read_marked";
  mute_user: "user_muted";
  pin_message: "message_pinned";
  ping: "pong";
  refresh_token: "token_refreshed";
  remove_participant: "user_removed";
  remove_reaction: "reaction_removed";
  report_message: "message_reported";
  resolve_report: "report_resolved";
  send_message: "message_sent";
  set_role: "role_changed";
  set_slow_mode: "slow_mode_set";
  unban_user: "user_unbanned";
  unblock_user: "user_unblocked";
  unfreeze_room: "room_unfrozen";
  unmute_user: "user_unmuted";
  unpin_message: "message_unpinned";
  update_room: "room_updated";
}
/**
 * Reports, newest first, as the `reports` frame has them.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "ReportList".
 */
export interface ReportList {
  reports: Report[];
}
/**
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "SearchResults".
 */
export interface SearchResults {
  /**
   * With an archive: the days back search covers (older messages are only in the archive).
   */
  covers_days: number | null;
  /**
   * The query as searched (trimmed).
   */
  query: string;
  /**
   * Best match first.
   */
  results: Message[];
}
/**
 * Whose token it is.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Session".
 */
export interface Session {
  tenant_id: string;
  user_id: string;
}
/**
 * The tenant's webhook endpoint.
 *
 * This interface was referenced by `ChatProtocol`'s JSON-Schema
 * via the `definition` "Webhook".
 */
export interface Webhook {
  events: Event[];
  /**
   * Only in the answer to the `PUT` that set it.
   */
  secret: string | null;
  url: string;
}
