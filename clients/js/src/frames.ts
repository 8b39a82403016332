// Typed helpers over the protocol's generated types (src/protocol.ts, from the server's schemas):
// frames picked by their `type`, and each request's reply.

import type { ClientFrame as AnyClientFrame, Replies, ServerFrame as AnyServerFrame } from "./protocol.js";

export type * from "./protocol.js";

/** Frames by their `type`, without it (and without `request_id`, which the client adds). */
type ByType<U extends { type: string }> = { [K in U["type"]]: Omit<Extract<U, { type: K }>, "type" | "request_id"> };
export type ServerFrames = ByType<AnyServerFrame>;
export type ClientFrames = ByType<AnyClientFrame>;

export type ServerFrameType = keyof ServerFrames;
/** A server frame of the given `type`s (any without), told apart by `type`. */
export type ServerFrame<T extends ServerFrameType = ServerFrameType> = T extends ServerFrameType
  ? { type: T; request_id?: string | number } & ServerFrames[T]
  : never;

export type ClientFrameType = keyof ClientFrames;
export type ClientFrame<T extends ClientFrameType = ClientFrameType> = { type: T } & ClientFrames[T];

/** The client frames that get a reply (`Replies` names it). */
export type RequestType = keyof Replies;

/** Per call: how long to wait for the reply, and a signal that gives up waiting. */
export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** `client_msg_id` is set automatically (kept across retries, and across page reloads with `storage`): a resend is stored once. */
export type SendMessageOptions = Omit<ClientFrame<"send_message">, "type" | "room_id" | "content">;
/** `client_room_id` is set automatically and kept across resends: a create_room asked twice creates one room. */
export type CreateRoomOptions = Omit<ClientFrame<"create_room">, "type">;
export type HistoryOptions = Pick<ClientFrame<"get_history">, "before" | "after" | "limit">;
