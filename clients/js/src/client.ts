// A typed client for the chat backend: request/reply over one WebSocket, typed events, a state
// object per room, and reconnection that loses nothing: after a drop it lists the user's rooms
// and catches each up from the position it had reached (live messages held meanwhile and merged
// by sequence), while transient failures are retried with backoff and only a refused token ends
// the session.

import { ChatError, isTransient } from "./errors.js";
import { ChatRequests } from "./requests.js";
import { RoomState, type LocalMessage, type RoomHost } from "./room.js";
import { backoffDelay, eachLimited, sleep } from "./timing.js";
import type {
  CallOptions,
  ClientFrame,
  ClientFrameType,
  Message,
  Replies,
  RequestType,
  RoomSummary,
  SendMessageOptions,
  ServerFrame,
  ServerFrameType,
} from "./frames.js";

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

/** Where sends on their way are kept across page reloads (`localStorage` in a browser). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ChatClientOptions {
  /** `ws(s)://host/api/v1/ws/chat`; the token is added as `?token=`. */
  url: string;
  /** The JWT, or a function giving a fresh one: called for each connection and before expiry. */
  token: string | (() => string | Promise<string>);
  /** Defaults to `globalThis.WebSocket`; pass the `ws` package's class in Node. */
  WebSocket?: SocketFactory;
  /** The HTTP API's base URL, asked whether a token is the reason a connection failed (browsers
   * cannot read a refused upgrade's status). Default: the WebSocket URL's origin over http(s). */
  httpUrl?: string;
  /** How long a request waits for its reply once sent. Default 15 s. */
  requestTimeoutMs?: number;
  /** How long `connect()` waits before it rejects (attempts go on). Default 30 s. */
  connectTimeoutMs?: number;
  /** How long one connection attempt may take to get its `connection` frame. Default 10 s. */
  attemptTimeoutMs?: number;
  /** Reconnection backoff: full jitter over base·2^attempt, capped. Defaults 250 ms and 30 s. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** A `ping` after this long without a frame; no `pong` in `heartbeatTimeoutMs` drops the
   * connection. Defaults 25 s and 10 s. */
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  /** Rooms caught up at once after a reconnect (each a few requests: under the frame limit). Default 4. */
  catchUpConcurrency?: number;
  /** Retry a rate-limited send once after the server's `retry_after_ms`. Default true. */
  retryRateLimited?: boolean;
  /** Keeps sends on their way across reloads, resent with the same `client_msg_id`. */
  storage?: KeyValueStorage;
  /** A token function's token is refreshed on the connection this long before it expires. Default 60 s. */
  refreshMarginMs?: number;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A message of a room, live or fetched by a catch-up (after a reconnect or a gap). */
export interface MessageEvent {
  type: "new_message";
  message: Message;
  live: boolean;
}

interface ClientEvents {
  state: ConnectionState;
  /** A refused token: the client is closed. */
  failed: ChatError;
  /** The rooms were listed and caught up after a (re)connection. */
  synced: RoomState[];
  /** A room's state changed. */
  room: RoomState;
  /** A room the user no longer belongs to (left, removed, banned): forgotten. */
  room_removed: RoomState;
  new_message: MessageEvent;
}
type EventName = Exclude<ServerFrameType, "new_message"> | keyof ClientEvents;
type EventPayload<T extends EventName> = T extends keyof ClientEvents ? ClientEvents[T] : T extends ServerFrameType ? ServerFrame<T> : never;
type Handler<T> = (payload: T) => void;

interface Pending {
  text: string;
  type: ClientFrameType;
  /** The connection it is bound to (a catch-up's request), rejected when that one drops. */
  generation: number | null;
  /** The connection it was sent on, or null while waiting for one. */
  sentOn: number | null;
  timeoutMs: number;
  timer: ReturnType<typeof setTimeout> | null;
  resolve: (reply: ServerFrame) => void;
  reject: (error: ChatError) => void;
}

const OPEN = 1;
/** Requests sent again when the connection dropped before their reply: asking twice does what
 * asking once does (a send carries its `client_msg_id`, a room's creation its `client_room_id`).
 * Others are rejected `disconnected`. */
const RESENT = new Set<ClientFrameType>([
  "send_message", "create_room", "join_room", "list_rooms", "update_room", "invite", "set_role", "mute_user", "unmute_user",
  "mark_read", "get_unread", "get_history", "get_thread", "get_receipts", "get_edit_history", "get_presence", "ping",
  "block_user", "list_blocked", "report_message", "list_reports", "list_pins",
]);
const UPGRADE_STATUS = /Unexpected server response: (\d{3})/;
/** Rounds of a catch-up asking again for a gap the live messages show: beyond, it is a hole
 * history cannot fill (a send that lost a race to its own retry). */
const FILL_ROUNDS = 3;

export class ChatClient extends ChatRequests {
  private readonly options: Required<Omit<ChatClientOptions, "WebSocket" | "storage" | "httpUrl">> &
    Pick<ChatClientOptions, "storage"> & { WebSocket: SocketFactory; httpUrl: string };
  private socket: SocketLike | null = null;
  /** Counts connections: requests and catch-ups of an older one are stale. */
  private generation = 0;
  private welcomedGeneration = -1;
  private stateValue: ConnectionState = "idle";
  private readonly handlers = new Map<string, Set<Handler<never>>>();
  private readonly pending = new Map<string, Pending>();
  private nextRequest = 0;
  private attempt = 0;
  private refusals = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFrameAt = 0;
  private waiters: { resolve: (frame: ServerFrame<"connection">) => void; reject: (error: ChatError) => void }[] = [];
  /** Live messages that arrived before the rooms were listed on this connection. */
  private early: Message[] | null = null;
  private readonly roomStates = new Map<string, RoomState>();
  private readonly host: RoomHost;
  private removeWindowListeners: (() => void) | null = null;
  /** The last connection frame. */
  session: ServerFrame<"connection"> | null = null;

  constructor(options: ChatClientOptions) {
    super();
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: SocketFactory }).WebSocket;
    if (!WebSocketClass) throw new Error("no WebSocket implementation: pass options.WebSocket");
    this.options = {
      requestTimeoutMs: 15_000,
      connectTimeoutMs: 30_000,
      attemptTimeoutMs: 10_000,
      backoffBaseMs: 250,
      backoffCapMs: 30_000,
      heartbeatMs: 25_000,
      heartbeatTimeoutMs: 10_000,
      catchUpConcurrency: 4,
      retryRateLimited: true,
      refreshMarginMs: 60_000,
      ...options,
      httpUrl: options.httpUrl ?? new URL(options.url).origin.replace(/^ws/, "http"),
      WebSocket: WebSocketClass,
    };
    const client = this;
    this.host = {
      get userId() {
        return client.session?.user_id;
      },
      history: (roomId, page) => this.getHistory(roomId, page),
      markRead: (roomId) => this.markRead(roomId).then(() => undefined),
      retry: (local) => this.sendLocal(local),
      changed: (room) => this.emit("room", room),
    };
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The rooms the user belongs to, as listed at the last (re)connection and updated since. */
  get rooms(): RoomState[] {
    return [...this.roomStates.values()];
  }

  /** A room's state (created empty for a room not listed yet). */
  room(roomId: string): RoomState {
    let room = this.roomStates.get(roomId);
    if (!room) this.roomStates.set(roomId, (room = new RoomState(roomId, this.host)));
    return room;
  }

  /** Subscribes to a server frame type or to the client's own events; returns the unsubscribe. */
  on<T extends EventName>(type: T, handler: Handler<EventPayload<T>>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler as Handler<never>);
    return () => set!.delete(handler as Handler<never>);
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

  // ---- connecting ----

  /** Connects; resolves with the `connection` frame once the rooms are listed and caught up.
   * Rejects with `connection_refused` (the token), `closed`, `aborted`, or `timeout` after
   * `connectTimeoutMs` (attempts go on: listen to `state` and `synced`). */
  connect(options: { signal?: AbortSignal } = {}): Promise<ServerFrame<"connection">> {
    if (this.stateValue === "open" && this.session && this.early === null) return Promise.resolve(this.session);
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter = {
        resolve: (frame: ServerFrame<"connection">) => (settle(), resolve(frame)),
        reject: (error: ChatError) => (settle(), reject(error)),
      };
      const onAbort = () => waiter.reject(new ChatError("aborted", "connect was aborted"));
      const timer = setTimeout(
        () => waiter.reject(new ChatError("timeout", "not connected in time; still trying")),
        this.options.connectTimeoutMs,
      );
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      if (this.stateValue === "idle" || this.stateValue === "closed") {
        this.listenToWindow();
        this.attempt = 0;
        this.refusals = 0;
        void this.open();
      }
    });
  }

  /** Reconnects now instead of waiting for the backoff (a "reconnect now" button), also after
   * the client was closed by a refused token. Nothing happens while connected. */
  reconnect(): void {
    if (this.stateValue === "open" || this.stateValue === "connecting") return;
    if (this.stateValue === "closed" || this.stateValue === "idle") {
      this.refusals = 0;
      this.listenToWindow();
    }
    this.attempt = 0;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.open();
  }

  /** Closes for good: no reconnection; waiting requests are rejected. */
  close(): void {
    this.end(new ChatError("closed", "the client was closed"));
  }

  private end(error: ChatError): void {
    this.setState("closed");
    this.generation += 1;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stopTimers();
    this.removeWindowListeners?.();
    this.removeWindowListeners = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "client closed");
    for (const [id, pending] of this.pending) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
    for (const waiter of [...this.waiters]) waiter.reject(error);
    if (error.code !== "closed") this.emit("failed", error);
  }

  /** The browser's `online` reconnects at once; `offline` drops a connection that would hang. */
  private listenToWindow(): void {
    const target = globalThis as { addEventListener?: (type: string, fn: () => void) => void; removeEventListener?: (type: string, fn: () => void) => void };
    if (this.removeWindowListeners || !target.addEventListener || !target.removeEventListener) return;
    const online = () => this.reconnect();
    const offline = () => this.drop();
    target.addEventListener("online", online);
    target.addEventListener("offline", offline);
    this.removeWindowListeners = () => {
      target.removeEventListener!("online", online);
      target.removeEventListener!("offline", offline);
    };
  }

  private async token(): Promise<string> {
    return typeof this.options.token === "function" ? await this.options.token() : this.options.token;
  }

  /** One connection attempt; its failure decides between a refused token and a retry. */
  private async open(): Promise<void> {
    // An attempt still under way (a manual reconnect, `online`) gives way to this one.
    const previous = this.socket;
    this.socket = null;
    previous?.close();
    const generation = ++this.generation;
    this.setState(this.session ? "reconnecting" : "connecting");
    let token: string;
    try {
      token = await this.token();
    } catch (error) {
      console.warn(`chat client: the token function failed (${String(error)}); retrying`);
      if (generation === this.generation) this.retryLater();
      return;
    }
    if (generation !== this.generation) return;
    const separator = this.options.url.includes("?") ? "&" : "?";
    const socket = new this.options.WebSocket(`${this.options.url}${separator}token=${encodeURIComponent(token)}`);
    this.socket = socket;
    let opened = false;
    let status: number | undefined;
    const attemptTimer = setTimeout(() => this.drop(socket), this.options.attemptTimeoutMs);
    socket.onopen = () => {
      opened = true;
    };
    socket.onerror = (event) => {
      // The `ws` package says what a refused upgrade answered; browsers do not.
      const match = UPGRADE_STATUS.exec(String((event as { message?: unknown })?.message ?? ""));
      if (match) status = Number(match[1]);
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = Date.now();
      const frame = JSON.parse(String(event.data)) as ServerFrame;
      if (frame.type === "connection") {
        clearTimeout(attemptTimer);
        this.welcome(frame as ServerFrame<"connection">, generation, token);
      } else if (generation === this.welcomedGeneration) {
        this.receive(frame);
      }
    };
    socket.onclose = () => {
      clearTimeout(attemptTimer);
      if (this.socket !== socket) return;
      this.dropped();
      if (this.welcomedGeneration === generation || opened) return this.retryLater();
      void this.failedAttempt(token, status);
    };
  }

  /** An upgrade that never opened: a refused token (401), or the network (or a busy server). */
  private async failedAttempt(token: string, status: number | undefined): Promise<void> {
    const generation = this.generation;
    const refused = (status ?? (await this.probe(token))) === 401;
    if (generation !== this.generation || this.stateValue === "closed") return;
    if (!refused) return this.retryLater();
    // A token function may give a fresh token (the old one expired): one more try with it.
    this.refusals += 1;
    if (typeof this.options.token === "function" && this.refusals < 2) return this.retryLater();
    this.end(new ChatError("connection_refused", "the server refused the token"));
  }

  /** Asks the HTTP API about the token: its status, or undefined when it cannot be reached. */
  private async probe(token: string): Promise<number | undefined> {
    try {
      const response = await fetch(`${this.options.httpUrl}/api/v1/chat/session`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(this.options.attemptTimeoutMs),
      });
      return response.status;
    } catch {
      return undefined;
    }
  }

  /** Drops the connection as if the network had (a missed heartbeat, `offline`, an attempt
   * that takes too long): the next attempt follows the backoff. */
  private drop(socket = this.socket): void {
    if (!socket || this.socket !== socket) return;
    this.dropped();
    socket.close();
    this.retryLater();
  }

  /** What a lost connection ends: its requests, catch-ups, timers and typing frames. */
  private dropped(): void {
    const generation = this.generation;
    this.socket = null;
    this.generation += 1;
    this.early = null;
    this.stopTimers();
    for (const room of this.roomStates.values()) room.held = null;
    for (const [id, pending] of this.pending) {
      if (pending.sentOn === null && pending.generation === null) continue;
      if (pending.generation === null && RESENT.has(pending.type)) {
        pending.sentOn = null;
        if (pending.timer) clearTimeout(pending.timer);
        pending.timer = null;
        continue;
      }
      if (pending.timer) clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(new ChatError("disconnected", `the connection dropped before the reply to ${pending.type} (connection ${generation}): it may or may not have been applied`));
    }
  }

  private retryLater(): void {
    if (this.stateValue === "closed") return;
    this.setState(this.session ? "reconnecting" : "connecting");
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt, this.options.backoffBaseMs, this.options.backoffCapMs);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, delay);
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.heartbeat = this.refreshTimer = null;
  }

  /** The `connection` frame: requests go out again, then the rooms are listed and caught up. */
  private welcome(frame: ServerFrame<"connection">, generation: number, token: string): void {
    if (generation !== this.generation) return;
    this.session = frame;
    this.welcomedGeneration = generation;
    this.attempt = 0;
    this.refusals = 0;
    this.early = [];
    this.setState("open");
    this.startHeartbeat(generation);
    this.scheduleRefresh(token, generation);
    this.flush();
    void this.sync(generation);
  }

  private current(generation: number): boolean {
    return generation === this.generation && this.welcomedGeneration === generation;
  }

  /** Lists the rooms, forgets those the user left meanwhile, and catches up every room whose
   * newest message is past the position reached (a room's live messages wait meanwhile). */
  private async sync(generation: number): Promise<void> {
    // Only rooms known before the listing can be missing from it: one added meanwhile is not.
    const known = [...this.roomStates.values()];
    let listed: RoomSummary[];
    try {
      listed = (await this.retrying(() => this.call({ type: "list_rooms" }, {}, generation), generation)).rooms;
    } catch {
      return; // the connection dropped: the next one lists again
    }
    const ids = new Set(listed.map((s) => s.room.id));
    for (const room of known) if (!ids.has(room.id)) this.forget(room);
    const behind: RoomState[] = [];
    for (const summary of listed) {
      const room = this.room(summary.room.id);
      room.summary(summary);
      // A support agent's unjoined support room: listed, but its messages do not come here.
      if (summary.role === null) continue;
      if (room.seq === null) {
        // First seen: it starts from its newest message (older ones are `load`ed, not missed).
        room.seq = summary.last_seq;
        room.roomSeq = summary.last_room_seq;
      } else if (summary.last_seq > room.seq) {
        behind.push(room);
      }
    }
    const early = this.early ?? [];
    this.early = null;
    for (const room of behind) room.held = [];
    for (const message of early) this.arrive(message);
    await eachLimited(behind, this.options.catchUpConcurrency, (room) => this.catchUp(room, generation));
    this.loadStored();
    if (!this.current(generation)) return;
    for (const waiter of [...this.waiters]) waiter.resolve(this.session!);
    this.emit("synced", this.rooms);
    this.emit("connection", this.session);
  }

  /** A call retried after transient failures (with backoff, or the server's `retry_after_ms`)
   * for as long as its connection lasts. */
  private async retrying<T>(call: () => Promise<T>, generation: number): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!isTransient(error) || !this.current(generation)) throw error;
        const wait = error.retryAfterMs ?? backoffDelay(attempt, this.options.backoffBaseMs, this.options.backoffCapMs);
        await sleep(wait);
        if (!this.current(generation)) throw error;
      }
    }
  }

  /** Fetches what a room missed after its position and delivers it, then the live messages held
   * meanwhile, in `seq` order. If the connection drops first, the held ones are let go: the next
   * catch-up starts from the same position and fetches them. */
  private async catchUp(room: RoomState, generation: number): Promise<void> {
    const held = (room.held ??= []);
    let done = false;
    try {
      for (let round = 0; round < FILL_ROUNDS && !done; round++) {
        await this.fetchAfter(room, generation);
        done = !this.release(room);
      }
      done = true;
    } catch (error) {
      if (error instanceof ChatError && (error.code === "not_found" || error.code === "permission_denied")) this.forget(room);
    } finally {
      // A newer connection's catch-up may hold this room by now: its list is not ours to release.
      if (room.held === held) room.held = null;
      if (done && this.current(generation)) for (const m of held.sort((a, b) => a.seq - b.seq)) this.deliver(m, true);
    }
  }

  private async fetchAfter(room: RoomState, generation: number): Promise<void> {
    for (;;) {
      const after = String(room.seq ?? 0);
      const page = await this.retrying(() => this.call({ type: "get_history", room_id: room.id, after, limit: 100 }, {}, generation), generation);
      for (const message of page.messages) this.deliver(message, false);
      if (!page.has_more || page.messages.length === 0) return;
    }
  }

  /** Delivers the held messages that follow the position without a gap; true if some still skip ahead. */
  private release(room: RoomState): boolean {
    const held = (room.held ?? []).sort((a, b) => a.seq - b.seq);
    while (held.length > 0) {
      const next = held[0];
      if (!room.has(next.id) && !this.follows(room, next)) return true;
      held.shift();
      this.deliver(next, true);
    }
    return false;
  }

  /** Whether `message` comes right after what the room delivered (`room_seq` 0: archived before it existed). */
  private follows(room: RoomState, message: Message): boolean {
    return room.roomSeq === null || message.room_seq === 0 || message.room_seq <= room.roomSeq + 1;
  }

  /** A live message (or this user's acknowledged send): delivered, or held while its room is
   * caught up; one that skips a `room_seq` starts a catch-up and waits for it. */
  private arrive(message: Message): void {
    const room = this.room(message.room_id);
    if (room.has(message.id)) return;
    if (this.early) this.early.push(message);
    else if (room.held) room.held.push(message);
    else if (!this.follows(room, message)) {
      room.held = [message];
      void this.catchUp(room, this.generation);
    } else this.deliver(message, true);
  }

  private deliver(message: Message, live: boolean): void {
    const room = this.room(message.room_id);
    if (room.has(message.id)) return;
    const mine = message.client_msg_id != null && room.pending.has(message.client_msg_id);
    room.deliver(message);
    if (mine) this.storePending();
    this.emit("new_message", { type: "new_message", message, live });
  }

  private forget(room: RoomState): void {
    if (!this.roomStates.delete(room.id)) return;
    room.held = null;
    this.emit("room_removed", room);
  }

  // ---- heartbeat and token refresh ----

  private startHeartbeat(generation: number): void {
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastFrameAt < this.options.heartbeatMs) return;
      const socket = this.socket;
      this.call({ type: "ping" }, { timeoutMs: this.options.heartbeatTimeoutMs }, generation).catch((error) => {
        if (error instanceof ChatError && error.code === "timeout") this.drop(socket);
      });
    }, Math.max(1, this.options.heartbeatMs / 2));
  }

  /** A token function's token is replaced on the connection before it expires. */
  private scheduleRefresh(token: string, generation: number): void {
    const expires = expiryOf(token);
    if (typeof this.options.token !== "function" || expires === null) return;
    const refresh = async (attempt: number): Promise<void> => {
      if (!this.current(generation)) return;
      try {
        const fresh = await this.token();
        await this.call({ type: "refresh_token", token: fresh }, {}, generation);
        this.scheduleRefresh(fresh, generation);
      } catch {
        // Until the old one expires; after that the server closes and the reconnect takes a new one.
        this.refreshTimer = setTimeout(() => void refresh(attempt + 1), backoffDelay(attempt, this.options.backoffBaseMs, this.options.backoffCapMs));
      }
    };
    this.refreshTimer = setTimeout(() => void refresh(0), Math.max(1000, expires - Date.now() - this.options.refreshMarginMs));
  }

  // ---- frames in ----

  private receive(frame: ServerFrame): void {
    this.track(frame);
    const pending = frame.request_id !== undefined ? this.pending.get(String(frame.request_id)) : undefined;
    if (pending) {
      this.pending.delete(String(frame.request_id));
      if (pending.timer) clearTimeout(pending.timer);
      if (frame.type === "error") {
        const error = frame as ServerFrame<"error">;
        pending.reject(new ChatError(error.code, error.message, error.retry_after_ms ?? undefined));
      } else {
        pending.resolve(frame);
      }
      return;
    }
    if (frame.type !== "new_message" && frame.type !== "message_sent") this.emit(frame.type, frame);
  }

  /** Keeps the rooms' state from every frame, replies included. */
  private track(frame: ServerFrame): void {
    const me = this.session?.user_id;
    switch (frame.type) {
      case "new_message":
      case "message_sent":
        this.arrive((frame as ServerFrame<"new_message">).message);
        break;
      case "room_created":
      case "room_joined":
      case "added_to_room": {
        const { room, participants } = frame as ServerFrame<"room_joined">;
        const state = this.room(room.id);
        state.describe(room, participants.find((p) => p.user_id === me)?.role ?? state.role);
        if (frame.type === "room_created") {
          state.seq ??= 0;
          state.roomSeq ??= 0;
        }
        state.setMembers(participants);
        break;
      }
      case "room_updated": {
        const { room } = frame as ServerFrame<"room_updated">;
        this.roomStates.get(room.id)?.describe(room);
        break;
      }
      case "room_frozen":
      case "room_unfrozen": {
        const state = this.roomStates.get((frame as ServerFrame<"room_frozen">).room_id);
        if (state?.room) state.describe({ ...state.room, frozen: frame.type === "room_frozen" });
        break;
      }
      case "slow_mode_set": {
        const { room_id, seconds } = frame as ServerFrame<"slow_mode_set">;
        const state = this.roomStates.get(room_id);
        if (state?.room) state.describe({ ...state.room, slow_mode_seconds: seconds });
        break;
      }
      case "room_left":
        this.forgetId((frame as ServerFrame<"room_left">).room_id);
        break;
      case "user_removed":
      case "user_banned":
      case "user_left": {
        const { room_id, user_id } = frame as ServerFrame<"user_left">;
        if (user_id === me && frame.type !== "user_left") this.forgetId(room_id);
        else this.roomStates.get(room_id)?.memberLeft(user_id);
        break;
      }
      case "user_joined": {
        const { room_id, user_id, display_name } = frame as ServerFrame<"user_joined">;
        this.roomStates.get(room_id)?.memberJoined({ user_id, display_name, role: "member", joined_at: new Date().toISOString() });
        break;
      }
      case "role_changed": {
        const { room_id, user_id, role } = frame as ServerFrame<"role_changed">;
        this.roomStates.get(room_id)?.roleChanged(user_id, role);
        break;
      }
      case "message_edited": {
        const { message } = frame as ServerFrame<"message_edited">;
        this.roomStates.get(message.room_id)?.update(message.id, () => message);
        break;
      }
      case "reaction_added":
      case "reaction_removed": {
        const { room_id, message_id, reactions } = frame as ServerFrame<"reaction_added">;
        this.roomStates.get(room_id)?.update(message_id, (m) => ({ ...m, reactions }));
        break;
      }
      case "message_deleted": {
        const { room_id, message_id, deleted_at, deleted_by } = frame as ServerFrame<"message_deleted">;
        const known = this.roomStates.get(room_id)?.deleted(message_id, deleted_at, deleted_by) ?? true;
        if (!known) this.refreshCounts().catch(() => {});
        break;
      }
      case "read_marked": {
        const counts = frame as ServerFrame<"read_marked">;
        const room = this.roomStates.get(counts.room_id);
        room?.setCounts(counts, room.seq ?? 0);
        break;
      }
      case "messages_read": {
        const { room_id, user_id, message_ids } = frame as ServerFrame<"messages_read">;
        if (user_id === me) this.refreshCounts().catch(() => {});
        else this.roomStates.get(room_id)?.read(user_id, message_ids);
        break;
      }
      case "typing_start":
      case "typing_stop": {
        const { room_id, user_id } = frame as ServerFrame<"typing_stop">;
        const name = frame.type === "typing_start" ? (frame as ServerFrame<"typing_start">).display_name : null;
        this.roomStates.get(room_id)?.setTyping(user_id, name);
        break;
      }
    }
  }

  private forgetId(roomId: string): void {
    const room = this.roomStates.get(roomId);
    if (room) this.forget(room);
  }

  /** The server's counts for every room (`list_rooms`: each with the `seq` it reaches). */
  async refreshCounts(options: CallOptions = {}): Promise<void> {
    const { rooms } = await this.listRooms(undefined, options);
    for (const summary of rooms) this.roomStates.get(summary.room.id)?.summary(summary);
  }

  // ---- frames out ----

  /** Sends a frame and resolves with its reply (rejects with ChatError on an error frame, a
   * timeout, an abort, or `disconnected` for a request the client does not send twice). */
  request<T extends RequestType>(frame: ClientFrame<T>, options: CallOptions = {}): Promise<ServerFrame<Replies[T]>> {
    // A creation is resent after a drop: its key makes the resend answer with the same room.
    if (frame.type === "create_room") {
      const creation = frame as unknown as ClientFrame<"create_room">;
      frame = { ...creation, client_room_id: creation.client_room_id ?? crypto.randomUUID() } as unknown as ClientFrame<T>;
    }
    return this.call(frame, options, null);
  }

  /** `generation`: bound to that connection (a catch-up), sent at once and never again. */
  private call<T extends RequestType>(frame: ClientFrame<T>, options: CallOptions, generation: number | null): Promise<ServerFrame<Replies[T]>> {
    const id = `r${++this.nextRequest}`;
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) return reject(new ChatError("aborted", `${frame.type} was aborted`));
      const settle = () => {
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(id);
        if (pending.timer) clearTimeout(pending.timer);
      };
      const onAbort = () => {
        settle();
        reject(new ChatError("aborted", `${frame.type} was aborted`));
      };
      const pending: Pending = {
        text: JSON.stringify({ ...frame, request_id: id }),
        type: frame.type,
        generation,
        sentOn: null,
        timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
        timer: null,
        resolve: (reply) => (settle(), resolve(reply as ServerFrame<Replies[T]>)),
        reject: (error) => (settle(), reject(error)),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, pending);
      if (generation !== null && !this.current(generation)) {
        pending.reject(new ChatError("disconnected", `the connection for ${frame.type} is gone`));
      } else if (this.welcomedGeneration === this.generation && this.socket?.readyState === OPEN) {
        this.transmit(pending);
      }
    });
  }

  /** Puts a request on the wire; its timeout runs from here (a request waiting for a connection
   * waits until its signal gives up). */
  private transmit(pending: Pending): void {
    this.socket!.send(pending.text);
    pending.sentOn = this.generation;
    pending.timer = setTimeout(() => {
      pending.reject(new ChatError("timeout", `no reply to ${pending.type} in ${pending.timeoutMs} ms`));
    }, pending.timeoutMs);
  }

  /** Sends the requests that waited for a connection, or were in flight on the last one and are safe to repeat. */
  private flush(): void {
    for (const pending of this.pending.values()) if (pending.sentOn === null && pending.generation === null) this.transmit(pending);
  }

  /** Sends a frame without a reply (typing) if connected; dropped otherwise: late, it would lie. */
  send(frame: ClientFrame<"typing_start" | "typing_stop">): void {
    if (this.welcomedGeneration === this.generation && this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(frame));
  }

  // ---- sends that survive ----

  /** Sends a message. It shows in its room's `pending` until stored, or as `failed` (retry with
   * `room.retry`); its `client_msg_id` stays the same across retries, reconnects and (with
   * `storage`) reloads, so it is stored once. A rate-limited send is retried once. */
  sendMessage(roomId: string, content: string, options: SendMessageOptions & CallOptions = {}) {
    const { timeoutMs, signal, ...rest } = options;
    const local: LocalMessage = {
      client_msg_id: rest.client_msg_id ?? crypto.randomUUID(),
      room_id: roomId,
      content,
      options: rest,
      status: "pending",
      created_at: new Date().toISOString(),
    };
    return this.sendLocal(local, { timeoutMs, signal });
  }

  private async sendLocal(local: LocalMessage, call: CallOptions = {}): Promise<ServerFrame<"message_sent">> {
    const room = this.room(local.room_id);
    local.status = "pending";
    delete local.error;
    room.sending(local);
    this.storePending();
    const frame: ClientFrame<"send_message"> = { type: "send_message", room_id: local.room_id, content: local.content, ...local.options, client_msg_id: local.client_msg_id };
    try {
      let reply: ServerFrame<"message_sent">;
      try {
        reply = await this.request(frame, call);
      } catch (error) {
        if (!(error instanceof ChatError) || error.code !== "rate_limited" || !this.options.retryRateLimited) throw error;
        await sleep(error.retryAfterMs ?? 1000, call.signal);
        reply = await this.request(frame, call);
      }
      // Already delivered (a duplicate of one the catch-up fetched): nothing else will clear it.
      if (room.has(reply.message.id) && room.pending.delete(local.client_msg_id)) this.storePending();
      return reply;
    } catch (error) {
      const failure = error instanceof ChatError ? error : new ChatError("internal_error", String(error));
      room.failed(local.client_msg_id, failure);
      this.storePending();
      throw failure;
    }
  }

  private storageKey(): string | null {
    return this.options.storage && this.session ? `chat:pending:${this.session.tenant_id}:${this.session.user_id}` : null;
  }

  private storePending(): void {
    const key = this.storageKey();
    if (!key) return;
    const all = [...this.roomStates.values()].flatMap((room) => [...room.pending.values()]);
    if (all.length === 0) this.options.storage!.removeItem(key);
    else this.options.storage!.setItem(key, JSON.stringify(all));
  }

  /** After a reload: sends on their way go again with their ids; failed ones wait for a retry. */
  private loadStored(): void {
    const key = this.storageKey();
    if (!key) return;
    let stored: LocalMessage[] = [];
    try {
      stored = JSON.parse(this.options.storage!.getItem(key) ?? "[]") as LocalMessage[];
    } catch {
      this.options.storage!.removeItem(key);
    }
    for (const local of stored) {
      const room = this.roomStates.get(local.room_id);
      if (!room || room.pending.has(local.client_msg_id)) continue;
      if (local.status === "failed") room.sending(local);
      else this.sendLocal(local).catch(() => {});
    }
  }
}

/** A JWT's `exp` in milliseconds, read without checking it (the server checks). */
function expiryOf(token: string): number | null {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = (JSON.parse(atob(payload)) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}
