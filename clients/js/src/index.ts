// A typed client for the chat backend: request/reply over one WebSocket, typed events,
// automatic reconnection with exponential backoff and full jitter, rejoin and catch-up of
// missed messages (no gaps, no duplicates), gap detection on `room_seq` while connected, and a
// queue for frames sent while disconnected.

import type {
  CreateRoomOptions,
  HistoryOptions,
  Message,
  Role,
  RoomType,
  SendMessageOptions,
  ServerFrame,
  ServerFrameType,
} from "./types.js";

export * from "./types.js";

/** An error frame from the server, a timeout, or a refused connection. */
export class ChatError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "ChatError";
  }
}

/** The parts of the WebSocket interface the client uses (browsers' and the `ws` package's). */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
}
export type SocketFactory = new (url: string) => SocketLike;

export interface ChatClientOptions {
  /** `ws(s)://host/api/v1/ws/chat`; the token is added as `?token=`. */
  url: string;
  /** The JWT, or a function giving a fresh one for each (re)connection. */
  token: string | (() => string | Promise<string>);
  /** Defaults to `globalThis.WebSocket`; pass the `ws` package's class in Node. */
  WebSocket?: SocketFactory;
  /** How long a request waits for its reply. Default 15 s. */
  requestTimeoutMs?: number;
  /** Reconnection backoff: full jitter over base·2^attempt, capped. Defaults 250 ms and 30 s. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Refusals in a row (closed before the `connection` frame) after which reconnection stops. Default 3. */
  maxRefusals?: number;
  /** Retry a rate-limited send once after the server's `retry_after_ms`. Default true. */
  retryRateLimited?: boolean;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

interface ClientEvents {
  state: ConnectionState;
  /** A refused token, or reconnection given up. */
  failed: ChatError;
}

type Handler<T> = (payload: T) => void;
type FrameOf<T extends ServerFrameType> = ServerFrame<T>;
type NewMessage = FrameOf<"new_message">;

interface Pending {
  text: string;
  /** The socket that carried it; another (after a reconnect) must carry it again. */
  sentOn: SocketLike | null;
  resolve: (reply: ServerFrame) => void;
  reject: (error: ChatError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const OPEN = 1;
const SEEN_LIMIT = 10_000;
const bySeq = (a: NewMessage, b: NewMessage) => a.message.seq - b.message.seq;

export class ChatClient {
  private readonly options: Required<Omit<ChatClientOptions, "WebSocket">> & { WebSocket: SocketFactory };
  private socket: SocketLike | null = null;
  private stateValue: ConnectionState = "idle";
  private readonly handlers = new Map<string, Set<Handler<never>>>();
  private readonly pending = new Map<string, Pending>();
  /** Frames without a reply (typing) waiting for the connection. */
  private queue: string[] = [];
  private nextRequest = 0;
  private attempt = 0;
  private refusals = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private welcomed: ((frame: FrameOf<"connection">) => void) | null = null;
  /** Rooms this client joined or created, rejoined after a reconnect. */
  private readonly rooms = new Set<string>();
  /** The newest `seq` seen per room: where a catch-up or a gap fill starts. */
  private readonly lastSeq = new Map<string, number>();
  /** The newest `room_seq` seen per room: a live message more than one past it means some were missed. */
  private readonly lastRoomSeq = new Map<string, number>();
  /** Rooms whose missed messages are being fetched, with the live messages held back meanwhile. */
  private readonly fills = new Map<string, NewMessage[]>();
  /** Message ids already emitted, so a catch-up never repeats one. */
  private readonly seen = new Set<string>();
  /** True until the first connection frame of the current socket has arrived and catch-up is done. */
  private syncing = true;
  /** The last connection frame. */
  session: FrameOf<"connection"> | null = null;

  constructor(options: ChatClientOptions) {
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: SocketFactory }).WebSocket;
    if (!WebSocketClass) throw new Error("no WebSocket implementation: pass options.WebSocket");
    this.options = {
      requestTimeoutMs: 15_000,
      backoffBaseMs: 250,
      backoffCapMs: 30_000,
      maxRefusals: 3,
      retryRateLimited: true,
      ...options,
      WebSocket: WebSocketClass,
    };
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Subscribes to a server frame type, or to the client's own `state` and `failed` events. */
  on<T extends ServerFrameType>(type: T, handler: Handler<FrameOf<T>>): () => void;
  on<T extends keyof ClientEvents>(type: T, handler: Handler<ClientEvents[T]>): () => void;
  on(type: string, handler: Handler<never>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  private emit(type: string, payload: unknown): void {
    for (const handler of this.handlers.get(type) ?? []) {
      try {
        (handler as Handler<unknown>)(payload);
      } catch (error) {
        console.error(`chat client: a ${type} handler threw`, error);
      }
    }
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue !== state) {
      this.stateValue = state;
      this.emit("state", state);
    }
  }

  /** Connects and resolves with the `connection` frame; rejects if the server refuses. */
  connect(): Promise<FrameOf<"connection">> {
    if (this.stateValue === "open" && this.session) return Promise.resolve(this.session);
    return new Promise((resolve, reject) => {
      const off = this.on("failed", (error) => {
        off();
        reject(error);
      });
      this.welcomed = (frame) => {
        off();
        resolve(frame);
      };
      this.open();
    });
  }

  /** Closes for good: no reconnection; pending requests are rejected. */
  close(): void {
    this.setState("closed");
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.socket?.close(1000, "client closed");
    this.socket = null;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ChatError("closed", "the client was closed"));
      this.pending.delete(id);
    }
  }

  private async open(): Promise<void> {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    if (this.stateValue === "closed") return;
    const separator = this.options.url.includes("?") ? "&" : "?";
    const socket = new this.options.WebSocket(`${this.options.url}${separator}token=${encodeURIComponent(token)}`);
    this.socket = socket;
    this.syncing = true;
    let welcomed = false;
    socket.onmessage = (event) => {
      const frame = JSON.parse(String(event.data)) as ServerFrame;
      if (frame.type === "connection") welcomed = true;
      this.receive(frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stateValue === "closed") return;
      this.refusals = welcomed ? 0 : this.refusals + 1;
      if (this.refusals >= this.options.maxRefusals || (!welcomed && this.attempt === 0 && !this.session)) {
        this.setState("closed");
        this.emit("failed", new ChatError("connection_refused", "the server refused the connection: check the token"));
        return;
      }
      this.scheduleReconnect();
    };
    socket.onerror = () => {
      /* onclose follows and decides */
    };
  }

  private scheduleReconnect(): void {
    this.setState("reconnecting");
    const ceiling = Math.min(this.options.backoffCapMs, this.options.backoffBaseMs * 2 ** this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => void this.open(), Math.random() * ceiling);
  }

  private receive(frame: ServerFrame): void {
    if (frame.type === "connection") {
      void this.welcome(frame as FrameOf<"connection">);
      return;
    }
    this.track(frame);
    const pending = frame.request_id ? this.pending.get(frame.request_id) : undefined;
    if (pending) {
      this.pending.delete(frame.request_id!);
      clearTimeout(pending.timer);
      if (frame.type === "error") {
        const error = frame as FrameOf<"error">;
        pending.reject(new ChatError(error.code, error.message, error.retry_after_ms));
      } else {
        pending.resolve(frame);
      }
      return;
    }
    if (frame.type === "new_message") this.arrive(frame as NewMessage);
    else this.emit(frame.type, frame);
  }

  /** A live message: emitted unless already seen, held while its room is being filled; one that
   * skips `room_seq` ahead starts a fill and goes out after the messages it missed. */
  private arrive(frame: NewMessage): void {
    const { message } = frame;
    if (this.seen.has(message.id)) return;
    const held = this.fills.get(message.room_id);
    if (held) held.push(frame);
    else if (this.skipsAhead(message)) this.startFill(message.room_id, [frame]);
    else this.deliver(frame);
  }

  private deliver(frame: NewMessage): void {
    this.remember(frame.message);
    this.emit("new_message", frame);
  }

  /** Keeps the rooms joined and the newest messages seen, for the catch-up after a reconnect. */
  private track(frame: ServerFrame): void {
    switch (frame.type) {
      case "room_created":
      case "room_joined":
      case "added_to_room":
        this.rooms.add((frame as FrameOf<"room_joined">).room.id);
        break;
      case "room_left":
        this.rooms.delete((frame as FrameOf<"room_left">).room_id);
        break;
      case "message_sent": {
        const { message } = frame as FrameOf<"message_sent">;
        // Our own message skipping ahead: others' before it were missed (the fill starts from
        // the `seq` seen before it).
        if (this.skipsAhead(message)) this.startFill(message.room_id, []);
        this.remember(message);
        break;
      }
      case "history":
        for (const message of (frame as FrameOf<"history">).messages) this.noteSeq(message);
        break;
    }
  }

  private noteSeq(message: Message): void {
    this.rooms.add(message.room_id);
    if ((this.lastSeq.get(message.room_id) ?? 0) < message.seq) this.lastSeq.set(message.room_id, message.seq);
    if ((this.lastRoomSeq.get(message.room_id) ?? 0) < message.room_seq) this.lastRoomSeq.set(message.room_id, message.room_seq);
  }

  /** Whether `message` is more than one past `last` (a `room_seq` seen implies a `seq` seen to fill from). */
  private skipsAhead(message: Message, last = this.lastRoomSeq.get(message.room_id)): boolean {
    return last !== undefined && message.room_seq > last + 1;
  }

  private remember(message: Message): void {
    this.noteSeq(message);
    this.seen.add(message.id);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
  }

  /** After every (re)connection: rejoin, catch up on missed messages, then send what waited. */
  private async welcome(frame: FrameOf<"connection">): Promise<void> {
    const reconnected = this.session !== null;
    this.session = frame;
    this.attempt = 0;
    this.refusals = 0;
    this.setState("open");
    if (reconnected) {
      for (const room of [...this.rooms]) {
        try {
          await this.call({ type: "join_room", room_id: room }, true);
          await this.fill(room);
        } catch (error) {
          if (!(error instanceof ChatError) || error.code === "closed") return;
          this.rooms.delete(room);
        }
      }
    }
    this.syncing = false;
    this.flush();
    this.welcomed?.(frame);
    this.welcomed = null;
    this.emit("connection", frame);
  }

  private startFill(room: string, held: NewMessage[]): void {
    this.fill(room, held).catch(() => {
      /* what was held went out; the next gap or reconnect fetches again */
    });
  }

  /** Fetches what a room missed after the newest `seq` seen and emits it, then the live messages
   * held meanwhile, all in `seq` order. One fill per room at a time: a running one covers a
   * later call (a request of it cut by a disconnect goes again after the reconnect). */
  private async fill(room: string, held: NewMessage[] = []): Promise<void> {
    let after = this.lastSeq.get(room);
    if (after === undefined || this.fills.has(room)) return;
    this.fills.set(room, held);
    try {
      for (;;) {
        const known = held.length;
        after = await this.fetchAfter(room, after);
        // Again only for a message that came during the fetch and still skips ahead: one sent
        // after the fetch read may be missing. A gap the fetch should have closed is a hole
        // history cannot fill (a lost send race), not worth asking again.
        if (held.length === known || !this.skipsIn(room, held)) break;
      }
    } finally {
      this.fills.delete(room);
      for (const frame of held.sort(bySeq)) if (!this.seen.has(frame.message.id)) this.deliver(frame);
    }
  }

  /** Emits the room's unseen messages after `after`, page by page; returns the newest `seq`. */
  private async fetchAfter(room: string, after: number): Promise<number> {
    for (;;) {
      const page = (await this.call({ type: "get_history", room_id: room, after: String(after), limit: 100 }, true)) as FrameOf<"history">;
      for (const message of page.messages) if (!this.seen.has(message.id)) this.deliver({ type: "new_message", message });
      after = page.messages.at(-1)?.seq ?? after;
      if (!page.has_more || page.messages.length === 0) return after;
    }
  }

  /** Whether the held messages not seen yet still skip a `room_seq`. */
  private skipsIn(room: string, held: NewMessage[]): boolean {
    let last = this.lastRoomSeq.get(room);
    for (const { message } of held.sort(bySeq)) {
      if (this.seen.has(message.id)) continue;
      if (this.skipsAhead(message, last)) return true;
      last = Math.max(last ?? 0, message.room_seq);
    }
    return false;
  }

  /** Sends a frame and resolves with its reply (rejects with ChatError on an error frame). */
  request<T extends ServerFrameType = ServerFrameType>(frame: Record<string, unknown>): Promise<FrameOf<T>> {
    return this.call(frame, false) as Promise<FrameOf<T>>;
  }

  /** `now`: during the catch-up, ahead of what waits for it. */
  private call(frame: Record<string, unknown>, now: boolean): Promise<ServerFrame> {
    const id = `r${++this.nextRequest}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChatError("timeout", `no reply to ${String(frame.type)} in time`));
      }, this.options.requestTimeoutMs);
      const pending: Pending = { text: JSON.stringify({ ...frame, request_id: id }), sentOn: null, resolve, reject, timer };
      this.pending.set(id, pending);
      if (this.ready(now)) {
        this.socket!.send(pending.text);
        pending.sentOn = this.socket;
      }
    });
  }

  /** Sends a frame without waiting for a reply (typing). */
  send(frame: Record<string, unknown>): void {
    const text = JSON.stringify(frame);
    if (this.ready(false)) this.socket!.send(text);
    else this.queue.push(text);
  }

  private ready(now: boolean): boolean {
    return this.socket?.readyState === OPEN && (now || !this.syncing);
  }

  /** Sends what waited for the connection. A request in flight when the connection dropped may
   * not have reached the server, so it goes again (sends carry a client_msg_id: stored once). */
  private flush(): void {
    const socket = this.socket;
    if (!socket) return;
    for (const pending of this.pending.values()) {
      if (pending.sentOn !== socket) {
        socket.send(pending.text);
        pending.sentOn = socket;
      }
    }
    for (const text of this.queue.splice(0)) socket.send(text);
  }

  // ---- typed helpers, one per client frame ----

  createRoom(options: CreateRoomOptions) {
    return this.request<"room_created">({ type: "create_room", ...options });
  }
  joinRoom(roomId: string) {
    return this.request<"room_joined">({ type: "join_room", room_id: roomId });
  }
  leaveRoom(roomId: string) {
    return this.request<"room_left">({ type: "leave_room", room_id: roomId });
  }
  listRooms(roomType?: RoomType) {
    return this.request<"rooms">({ type: "list_rooms", room_type: roomType });
  }
  updateRoom(roomId: string, changes: { name?: string; description?: string; is_private?: boolean }) {
    return this.request<"room_updated">({ type: "update_room", room_id: roomId, ...changes });
  }
  invite(roomId: string, userIds: string[]) {
    return this.request<"invited">({ type: "invite", room_id: roomId, user_ids: userIds });
  }
  removeParticipant(roomId: string, userId: string) {
    return this.request<"user_removed">({ type: "remove_participant", room_id: roomId, user_id: userId });
  }
  setRole(roomId: string, userId: string, role: Role) {
    return this.request<"role_changed">({ type: "set_role", room_id: roomId, user_id: userId, role });
  }
  mute(roomId: string, userId: string, durationSeconds?: number) {
    return this.request<"user_muted">({ type: "mute_user", room_id: roomId, user_id: userId, duration_seconds: durationSeconds });
  }
  unmute(roomId: string, userId: string) {
    return this.request<"user_unmuted">({ type: "unmute_user", room_id: roomId, user_id: userId });
  }
  ban(roomId: string, userId: string, reason?: string) {
    return this.request<"user_banned">({ type: "ban_user", room_id: roomId, user_id: userId, reason });
  }
  unban(roomId: string, userId: string) {
    return this.request<"user_unbanned">({ type: "unban_user", room_id: roomId, user_id: userId });
  }

  /** Sends a message; a rate-limited send is retried once after the server's delay. */
  async sendMessage(roomId: string, content: string, options: SendMessageOptions = {}) {
    const frame = { type: "send_message", room_id: roomId, content, client_msg_id: crypto.randomUUID(), ...options };
    try {
      return await this.request<"message_sent">(frame);
    } catch (error) {
      if (!(error instanceof ChatError) || error.code !== "rate_limited" || !this.options.retryRateLimited) throw error;
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs ?? 1000));
      return this.request<"message_sent">(frame);
    }
  }
  editMessage(messageId: string, content: string) {
    return this.request<"message_edited">({ type: "edit_message", message_id: messageId, content });
  }
  deleteMessage(messageId: string) {
    return this.request<"message_deleted">({ type: "delete_message", message_id: messageId });
  }
  getEditHistory(messageId: string) {
    return this.request<"edit_history">({ type: "get_edit_history", message_id: messageId });
  }
  addReaction(messageId: string, emoji: string) {
    return this.request<"reaction_added">({ type: "add_reaction", message_id: messageId, emoji });
  }
  removeReaction(messageId: string, emoji: string) {
    return this.request<"reaction_removed">({ type: "remove_reaction", message_id: messageId, emoji });
  }
  getThread(messageId: string, options: { after?: string; limit?: number } = {}) {
    return this.request<"thread">({ type: "get_thread", message_id: messageId, ...options });
  }
  getReceipts(messageId: string) {
    return this.request<"receipts">({ type: "get_receipts", message_id: messageId });
  }
  markRead(roomId: string, messageIds: string[] = []) {
    return this.request<"read_marked">({ type: "mark_read", room_id: roomId, message_ids: messageIds });
  }
  getUnread() {
    return this.request<"unread">({ type: "get_unread" });
  }
  getHistory(roomId: string, options: HistoryOptions = {}) {
    return this.request<"history">({ type: "get_history", room_id: roomId, ...options });
  }
  getPresence(userIds: string[]) {
    return this.request<"presence_state">({ type: "get_presence", user_ids: userIds });
  }
  announce(content: string) {
    return this.request<"announcement">({ type: "announce", content });
  }
  typingStart(roomId: string): void {
    this.send({ type: "typing_start", room_id: roomId });
  }
  typingStop(roomId: string): void {
    this.send({ type: "typing_stop", room_id: roomId });
  }
  ping() {
    return this.request<"pong">({ type: "ping" });
  }
}
