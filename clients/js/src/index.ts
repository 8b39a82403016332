// The chat backend's client library: `ChatClient` (connection, requests, events, reconnection
// with catch-up), `RoomState` (one room as the client keeps it) and the protocol's types.

export { ChatClient } from "./client.js";
export type { ChatClientOptions, ConnectionState, KeyValueStorage, MessageEvent, SocketFactory, SocketLike } from "./client.js";
export { ChatError, isTransient } from "./errors.js";
export { RoomState } from "./room.js";
export type { LocalMessage } from "./room.js";
export * from "./frames.js";
