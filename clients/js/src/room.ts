// One room as a client sees it: messages by sequence, unread and mention counts, receipts,
// typing, members, and the messages this user is sending. The client keeps one per room it
// belongs to and updates it from every frame; a page renders from it.

import type { ChatError } from "./errors.js";
import type { Message, Participant, Role, Room, RoomSummary, SendMessageOptions, Unread } from "./frames.js";

/** A message of this user's not stored yet (`pending`), or refused or timed out (`failed`). */
export interface LocalMessage {
  client_msg_id: string;
  room_id: string;
  content: string;
  options: SendMessageOptions;
  status: "pending" | "failed";
  error?: { code: string; message: string };
  created_at: string;
}

/** What a room needs from its client: its user, its messages' pages, and its frames. */
export interface RoomHost {
  readonly userId: string | undefined;
  history(roomId: string, options: { before?: string; limit: number }): Promise<{ messages: Message[]; has_more: boolean }>;
  markRead(roomId: string): Promise<void>;
  retry(local: LocalMessage): Promise<unknown>;
  changed(room: RoomState): void;
}

const PAGE = 50;

export class RoomState {
  room: Room | null = null;
  role: Role | null = null;
  participantCount = 0;
  members: Participant[] | null = null;
  /** Delivered messages by id; `messages` lists them in `seq` order. */
  private readonly byId = new Map<string, Message>();
  private sorted: Message[] | null = null;
  /** This user's messages on their way, by `client_msg_id`. */
  readonly pending = new Map<string, LocalMessage>();
  unread = 0;
  mentions = 0;
  capped = false;
  /** The counts include every message up to this `seq`; only later ones add to them. */
  private countedTo = 0;
  /** Per other member, the newest `seq` they read. */
  readonly readUpTo = new Map<string, number>();
  /** Who is typing: user id to display name. */
  readonly typing = new Map<string, string>();
  /** Whether the newest page was fetched (`load`); until then `messages` holds only what arrived. */
  loaded = false;
  /** Whether older messages than the oldest held can be fetched (`loadOlder`). */
  hasOlder = true;
  /** The newest `seq` and `room_seq` delivered with nothing before them missing: where a
   * catch-up starts. Null before anything of the room is known. */
  seq: number | null = null;
  roomSeq: number | null = null;
  /** Live messages held while a catch-up runs; null when none runs. */
  held: Message[] | null = null;
  /** Whether a user of the page is looking at it: messages then do not count as unread. */
  active = false;

  constructor(
    readonly id: string,
    private readonly host: RoomHost,
  ) {}

  get messages(): Message[] {
    this.sorted ??= [...this.byId.values()].sort((a, b) => a.seq - b.seq);
    return this.sorted;
  }

  /** Root messages (not thread replies), in order. */
  get timeline(): Message[] {
    return this.messages.filter((m) => !m.reply_to);
  }

  has(messageId: string): boolean {
    return this.byId.has(messageId);
  }

  get(messageId: string): Message | undefined {
    return this.byId.get(messageId);
  }

  /** Fetches the newest page (once; again with `force`). */
  async load(force = false): Promise<void> {
    if (this.loaded && !force) return;
    const page = await this.host.history(this.id, { limit: PAGE });
    this.loaded = true;
    this.hasOlder = page.has_more;
    this.merge(page.messages);
  }

  /** Fetches the page before the oldest message held; false when there is none. */
  async loadOlder(): Promise<boolean> {
    if (!this.loaded) await this.load();
    if (!this.hasOlder) return false;
    const page = await this.host.history(this.id, { before: String(this.oldestSeq()), limit: PAGE });
    this.hasOlder = page.has_more;
    this.merge(page.messages);
    return page.messages.length > 0;
  }

  private oldestSeq(): number {
    return this.messages[0]?.seq ?? Number.MAX_SAFE_INTEGER;
  }

  /** Pages of history: stored as they are, without moving the catch-up position or counts. */
  private merge(messages: Message[]): void {
    for (const m of messages) this.byId.set(m.id, m);
    this.sorted = null;
    this.host.changed(this);
  }

  /** Marks everything read (server and counts). */
  markRead(): Promise<void> {
    return this.host.markRead(this.id);
  }

  /** Sends a failed message again, with its `client_msg_id`. */
  retry(clientMsgId: string): Promise<unknown> {
    const local = this.pending.get(clientMsgId);
    if (!local) return Promise.resolve();
    return this.host.retry(local);
  }

  // ---- updates from the client ----

  /** A message delivered (live or caught up): stored, the position moved, counted. */
  deliver(message: Message): void {
    this.byId.set(message.id, message);
    this.sorted = null;
    if (message.seq > (this.seq ?? 0)) {
      this.seq = message.seq;
      this.roomSeq = message.room_seq;
    }
    if (message.client_msg_id) this.pending.delete(message.client_msg_id);
    this.typing.delete(message.sender_id);
    if (this.counts(message)) {
      this.unread += 1;
      if (this.mentionsMe(message)) this.mentions += 1;
    }
    this.host.changed(this);
  }

  /** Whether a message adds to the unread count: someone else's, not system, after the counts. */
  private counts(message: Message): boolean {
    return (
      !this.active &&
      !this.capped &&
      message.seq > this.countedTo &&
      message.sender_id !== this.host.userId &&
      message.message_type !== "system" &&
      !message.deleted_at
    );
  }

  private mentionsMe(message: Message): boolean {
    return this.host.userId !== undefined && message.mentions.includes(this.host.userId);
  }

  /** A newer version of a message held (edit, reactions); unknown ones are left to `load`. */
  update(messageId: string, change: (m: Message) => Message): void {
    const message = this.byId.get(messageId);
    if (!message) return;
    this.byId.set(messageId, change(message));
    this.sorted = null;
    this.host.changed(this);
  }

  /** A deletion: false when only the server can tell the new counts (it may have been unread
   * but was counted by the server, not here). */
  deleted(messageId: string, deletedAt: string, deletedBy: string): boolean {
    const message = this.byId.get(messageId);
    let known = true;
    if (message) {
      if (this.counts(message)) {
        this.unread = Math.max(0, this.unread - 1);
        if (this.mentionsMe(message)) this.mentions = Math.max(0, this.mentions - 1);
      } else if (message.seq <= this.countedTo && this.unread > 0) {
        known = false;
      }
      this.byId.set(messageId, { ...message, deleted_at: deletedAt, deleted_by: deletedBy, content: "", attachments: [], mentions: [] });
      this.sorted = null;
    } else if (this.unread > 0) {
      known = false;
    }
    this.host.changed(this);
    return known;
  }

  /** The server's listing: the room, role and counts (which reach `last_seq`). */
  summary(summary: RoomSummary): void {
    this.participantCount = summary.participant_count;
    this.describe(summary.room, summary.role);
    this.setCounts(summary, summary.last_seq);
  }

  describe(room: Room, role = this.role): void {
    this.room = room;
    this.role = role;
    this.host.changed(this);
  }

  /** Counts from the server, including every message up to `countedTo`. */
  setCounts(counts: Pick<Unread, "unread_count" | "mention_count" | "capped">, countedTo: number): void {
    this.unread = counts.unread_count;
    this.mentions = counts.mention_count;
    this.capped = counts.capped;
    this.countedTo = Math.max(this.countedTo, countedTo);
    this.host.changed(this);
  }

  sending(local: LocalMessage): void {
    this.pending.set(local.client_msg_id, local);
    this.host.changed(this);
  }

  failed(clientMsgId: string, error: ChatError): void {
    const local = this.pending.get(clientMsgId);
    if (!local) return;
    local.status = "failed";
    local.error = { code: error.code, message: error.message };
    this.host.changed(this);
  }

  setMembers(members: Participant[]): void {
    this.members = members;
    this.participantCount = members.length;
    this.host.changed(this);
  }

  memberLeft(userId: string): void {
    if (this.members) this.setMembers(this.members.filter((p) => p.user_id !== userId));
    this.typing.delete(userId);
  }

  memberJoined(member: Participant): void {
    if (this.members && !this.members.some((p) => p.user_id === member.user_id)) this.setMembers([...this.members, member]);
  }

  roleChanged(userId: string, role: Role): void {
    if (userId === this.host.userId) this.role = role;
    if (this.members) this.setMembers(this.members.map((p) => (p.user_id === userId ? { ...p, role } : p)));
    else this.host.changed(this);
  }

  /** Another member read up to the newest of `messageIds` (or everything held, when none). */
  read(userId: string, messageIds: string[]): void {
    const seqs = messageIds.map((id) => this.byId.get(id)?.seq ?? 0);
    const newest = seqs.length ? Math.max(...seqs) : (this.seq ?? 0);
    this.readUpTo.set(userId, Math.max(this.readUpTo.get(userId) ?? 0, newest));
    this.host.changed(this);
  }

  /** Members other than this user whose read position reaches `message`. */
  readers(message: Message): string[] {
    return [...this.readUpTo].filter(([user, seq]) => user !== this.host.userId && seq >= message.seq).map(([user]) => user);
  }

  setTyping(userId: string, name: string | null): void {
    if (name === null) this.typing.delete(userId);
    else this.typing.set(userId, name);
    this.host.changed(this);
  }
}
