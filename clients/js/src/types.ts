// The wire protocol of the chat backend (README.md, "Protocol"), as TypeScript types.

export type RoomType = "direct" | "group" | "support" | "broadcast";
export type Role = "admin" | "moderator" | "member";
export type MessageType = "text" | "image" | "file" | "system";
export type PresenceStatus = "online" | "offline";

export interface Room {
  id: string;
  name: string;
  description: string | null;
  room_type: RoomType;
  is_private: boolean;
  created_by: string;
  created_at: string;
}

export interface Participant {
  user_id: string;
  display_name: string | null;
  role: Role;
  joined_at: string;
}

export interface Attachment {
  url: string;
  name: string;
  size: number;
  mime_type: string;
}

export interface Reaction {
  emoji: string;
  count: number;
  users: string[];
}

export interface Message {
  id: string;
  /** The history cursor. Within a room messages commit in `seq` order: sort by it for order. */
  seq: number;
  /** The message's number in its room, 1, 2, 3, … without gaps (0 for messages archived before
   * it existed): a jump means messages were missed. */
  room_seq: number;
  room_id: string;
  sender_id: string;
  sender_name: string | null;
  message_type: MessageType;
  content: string;
  attachments: Attachment[];
  mentions: string[];
  reply_to: string | null;
  reply_count: number;
  client_msg_id?: string;
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
  deleted_by: string | null;
  reactions: Reaction[];
}

export interface Unread {
  room_id: string;
  unread_count: number;
  mention_count: number;
  /** A count stopped at 1000: there are at least that many ("1000+"). */
  capped: boolean;
}

/** A room of `list_rooms`, with the caller's unread state in it. */
export interface RoomSummary extends Unread {
  room: Room;
  role: Role | null;
  participant_count: number;
}

export interface Edit {
  version: number;
  content: string;
  edited_by: string;
  edited_at: string;
}

export interface Receipt {
  user_id: string;
  at: string;
}

export interface PresenceInfo {
  user_id: string;
  status: PresenceStatus;
  last_seen: string | null;
}

/** Every frame the server sends, by `type`. */
export interface ServerFrames {
  connection: {
    status: "connected";
    connection_id: string;
    user_id: string;
    tenant_id: string;
    display_name: string;
    server_time: string;
    unread: Unread[];
  };
  error: { code: string; message: string; retry_after_ms?: number };
  room_created: { room: Room; participants: Participant[] };
  room_joined: { room: Room; participants: Participant[] };
  room_left: { room_id: string };
  rooms: { rooms: RoomSummary[] };
  room_updated: { room: Room };
  added_to_room: { room: Room; participants: Participant[]; added_by: string };
  invited: { room_id: string; user_ids: string[] };
  user_joined: { room_id: string; user_id: string; display_name: string };
  user_left: { room_id: string; user_id: string };
  user_removed: { room_id: string; user_id: string; by: string };
  role_changed: { room_id: string; user_id: string; role: Role; by: string };
  user_muted: { room_id: string; user_id: string; until: string; by: string };
  user_unmuted: { room_id: string; user_id: string; by: string };
  user_banned: { room_id: string; user_id: string; by: string; reason: string | null };
  user_unbanned: { room_id: string; user_id: string; by: string };
  message_sent: { message: Message; duplicate: boolean };
  /** The same for every recipient: no counts (count them, or ask `get_unread`). */
  new_message: { message: Message };
  message_edited: { message: Message };
  message_deleted: { room_id: string; message_id: string; deleted_by: string; deleted_at: string };
  edit_history: { message_id: string; current: Message; versions: Edit[] };
  reaction_added: { room_id: string; message_id: string; user_id: string; emoji: string; reactions: Reaction[] };
  reaction_removed: { room_id: string; message_id: string; user_id: string; emoji: string; reactions: Reaction[] };
  thread: { parent: Message; replies: Message[]; has_more: boolean; next_cursor: string | null };
  receipts: { message_id: string; delivered: Receipt[]; read: Receipt[] };
  typing_start: { room_id: string; user_id: string; display_name: string };
  typing_stop: { room_id: string; user_id: string };
  read_marked: { room_id: string; message_ids: string[]; unread_count: number; mention_count: number; capped: boolean };
  messages_read: { room_id: string; user_id: string; message_ids: string[]; read_at: string };
  unread: { rooms: Unread[] };
  history: { room_id: string; messages: Message[]; has_more: boolean; next_cursor: string | null };
  presence: { user_id: string; status: PresenceStatus; last_seen: string };
  presence_state: { users: PresenceInfo[] };
  announcement: { content: string; from: string; sent_at: string };
  pong: Record<string, never>;
}

export type ServerFrameType = keyof ServerFrames;
export type ServerFrame<T extends ServerFrameType = ServerFrameType> = { type: T; request_id?: string } & ServerFrames[T];

export interface SendMessageOptions {
  message_type?: MessageType;
  attachments?: Attachment[];
  mentions?: string[];
  reply_to?: string;
  /** Set automatically: a resend after a reconnect is stored once. */
  client_msg_id?: string;
}

export interface CreateRoomOptions {
  name?: string;
  room_type: RoomType;
  participants?: string[];
  description?: string;
  is_private?: boolean;
}

export interface HistoryOptions {
  before?: string;
  after?: string;
  limit?: number;
}
