// One typed helper per client frame, on top of `request`.

import type { CallOptions, ClientFrame, CreateRoomOptions, HistoryOptions, Replies, RequestType, Role, RoomType, ServerFrame } from "./frames.js";

export abstract class ChatRequests {
  /** Sends a frame and resolves with its reply. */
  abstract request<T extends RequestType>(frame: ClientFrame<T>, options?: CallOptions): Promise<ServerFrame<Replies[T]>>;
  /** Sends a frame that has no reply. */
  abstract send(frame: ClientFrame<"typing_start" | "typing_stop">): void;

  createRoom(options: CreateRoomOptions, call?: CallOptions) {
    return this.request({ type: "create_room", ...options }, call);
  }
  joinRoom(roomId: string, call?: CallOptions) {
    return this.request({ type: "join_room", room_id: roomId }, call);
  }
  leaveRoom(roomId: string, call?: CallOptions) {
    return this.request({ type: "leave_room", room_id: roomId }, call);
  }
  listRooms(roomType?: RoomType, call?: CallOptions) {
    return this.request({ type: "list_rooms", room_type: roomType }, call);
  }
  updateRoom(roomId: string, changes: { name?: string; description?: string; is_private?: boolean }, call?: CallOptions) {
    return this.request({ type: "update_room", room_id: roomId, ...changes }, call);
  }
  invite(roomId: string, userIds: string[], call?: CallOptions) {
    return this.request({ type: "invite", room_id: roomId, user_ids: userIds }, call);
  }
  removeParticipant(roomId: string, userId: string, call?: CallOptions) {
    return this.request({ type: "remove_participant", room_id: roomId, user_id: userId }, call);
  }
  setRole(roomId: string, userId: string, role: Role, call?: CallOptions) {
    return this.request({ type: "set_role", room_id: roomId, user_id: userId, role }, call);
  }
  mute(roomId: string, userId: string, durationSeconds?: number, call?: CallOptions) {
    return this.request({ type: "mute_user", room_id: roomId, user_id: userId, duration_seconds: durationSeconds }, call);
  }
  unmute(roomId: string, userId: string, call?: CallOptions) {
    return this.request({ type: "unmute_user", room_id: roomId, user_id: userId }, call);
  }
  ban(roomId: string, userId: string, reason?: string, call?: CallOptions) {
    return this.request({ type: "ban_user", room_id: roomId, user_id: userId, reason }, call);
  }
  unban(roomId: string, userId: string, call?: CallOptions) {
    return this.request({ type: "unban_user", room_id: roomId, user_id: userId }, call);
  }
  editMessage(messageId: string, content: string, call?: CallOptions) {
    return this.request({ type: "edit_message", message_id: messageId, content }, call);
  }
  deleteMessage(messageId: string, call?: CallOptions) {
    return this.request({ type: "delete_message", message_id: messageId }, call);
  }
  getEditHistory(messageId: string, call?: CallOptions) {
    return this.request({ type: "get_edit_history", message_id: messageId }, call);
  }
  addReaction(messageId: string, emoji: string, call?: CallOptions) {
    return this.request({ type: "add_reaction", message_id: messageId, emoji }, call);
  }
  removeReaction(messageId: string, emoji: string, call?: CallOptions) {
    return this.request({ type: "remove_reaction", message_id: messageId, emoji }, call);
  }
  getThread(messageId: string, options: { after?: string; limit?: number } = {}, call?: CallOptions) {
    return this.request({ type: "get_thread", message_id: messageId, ...options }, call);
  }
  getReceipts(messageId: string, call?: CallOptions) {
    return this.request({ type: "get_receipts", message_id: messageId }, call);
  }
  markRead(roomId: string, messageIds: string[] = [], call?: CallOptions) {
    return this.request({ type: "mark_read", room_id: roomId, message_ids: messageIds }, call);
  }
  getUnread(call?: CallOptions) {
    return this.request({ type: "get_unread" }, call);
  }
  getHistory(roomId: string, options: HistoryOptions = {}, call?: CallOptions) {
    return this.request({ type: "get_history", room_id: roomId, ...options }, call);
  }
  /** Every page of a room's history from `after` (a `seq`; default the start) up to now. */
  async *historyPages(roomId: string, options: { after?: string; before?: string; limit?: number } & CallOptions = {}) {
    const { timeoutMs, signal, limit = 100 } = options;
    let cursor = options.before ?? options.after;
    const backwards = options.before !== undefined || options.after === undefined;
    for (;;) {
      const page = await this.getHistory(roomId, { ...(backwards ? { before: cursor } : { after: cursor ?? "0" }), limit }, { timeoutMs, signal });
      yield page;
      if (!page.has_more || page.next_cursor === null) return;
      cursor = page.next_cursor;
    }
  }
  getPresence(userIds: string[], call?: CallOptions) {
    return this.request({ type: "get_presence", user_ids: userIds }, call);
  }
  announce(content: string, call?: CallOptions) {
    return this.request({ type: "announce", content }, call);
  }
  pinMessage(messageId: string, call?: CallOptions) {
    return this.request({ type: "pin_message", message_id: messageId }, call);
  }
  unpinMessage(messageId: string, call?: CallOptions) {
    return this.request({ type: "unpin_message", message_id: messageId }, call);
  }
  listPins(roomId: string, call?: CallOptions) {
    return this.request({ type: "list_pins", room_id: roomId }, call);
  }
  freezeRoom(roomId: string, call?: CallOptions) {
    return this.request({ type: "freeze_room", room_id: roomId }, call);
  }
  unfreezeRoom(roomId: string, call?: CallOptions) {
    return this.request({ type: "unfreeze_room", room_id: roomId }, call);
  }
  /** 0 turns it off. */
  setSlowMode(roomId: string, seconds: number, call?: CallOptions) {
    return this.request({ type: "set_slow_mode", room_id: roomId, seconds }, call);
  }
  /** Their messages elsewhere then arrive with `sender_blocked: true`; a direct room with them closes to them. */
  blockUser(userId: string, call?: CallOptions) {
    return this.request({ type: "block_user", user_id: userId }, call);
  }
  unblockUser(userId: string, call?: CallOptions) {
    return this.request({ type: "unblock_user", user_id: userId }, call);
  }
  listBlocked(call?: CallOptions) {
    return this.request({ type: "list_blocked" }, call);
  }
  reportMessage(messageId: string, reason: string, call?: CallOptions) {
    return this.request({ type: "report_message", message_id: messageId, reason }, call);
  }
  /** Moderators and admins: a room's reports, or those of every room they moderate; `open` ones unless asked. */
  listReports(options: { roomId?: string; status?: "open" | "dismissed" | "deleted" } = {}, call?: CallOptions) {
    return this.request({ type: "list_reports", room_id: options.roomId ?? null, status: options.status ?? null }, call);
  }
  resolveReport(reportId: string, action: "dismiss" | "delete_message", call?: CallOptions) {
    return this.request({ type: "resolve_report", report_id: reportId, action }, call);
  }
  typingStart(roomId: string): void {
    this.send({ type: "typing_start", room_id: roomId });
  }
  typingStop(roomId: string): void {
    this.send({ type: "typing_stop", room_id: roomId });
  }
  ping(call?: CallOptions) {
    return this.request({ type: "ping" }, call);
  }
}
