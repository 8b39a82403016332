// Errors the client rejects with, and which of them are worth trying again.

/** An error frame from the server, a timeout, a dropped connection or a refused token. */
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

/** Codes that may succeed when asked again: the request was not refused for what it is. */
const TRANSIENT = new Set(["timeout", "disconnected", "rate_limited", "service_unavailable", "internal_error"]);

export function isTransient(error: unknown): error is ChatError {
  return error instanceof ChatError && TRANSIENT.has(error.code);
}
