// Test helpers: the real local gateway binary on a free port (restartable on the same port),
// development tokens, and a TCP proxy that can drop connections like a network failure, or
// single frames.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
export const binary = path.join(target, "debug", "local-gateway");
export const screenshots = target;

export const WAIT_MS = 10_000;

/** Resolves when `check()` is truthy, polling events already on their way; fails after WAIT_MS. */
export async function until(check, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with scripts/dev.sh test`);
  return value;
}

const LIMITS_OFF = Object.fromEntries(
  ["MESSAGES", "TYPING", "FRAMES", "CONNECTS_PER_USER", "CONNECTS_PER_IP", "HTTP"].map((k) => [`RATE_LIMIT_${k}`, "off"]),
);

/** A running local gateway. */
export class Gateway {
  constructor(env = {}) {
    this.env = {
      PATH: process.env.PATH,
      DATABASE_URL: required("DATABASE_URL"),
      REDIS_URL: required("REDIS_URL"),
      JWT_SECRET_KEY: randomUUID(),
      DEV_TOKENS: "1",
      WEB_DIR: path.join(root, "clients/web"),
      JS_CLIENT_DIR: path.join(root, "clients/js/dist"),
      RUST_LOG: "warn",
      ...LIMITS_OFF,
      ...env,
    };
    this.port = 0;
  }

  static async start(env) {
    const gateway = new Gateway(env);
    await gateway.run(["migrate"]);
    await gateway.serve();
    return gateway;
  }

  run(args) {
    return new Promise((resolve, reject) => {
      const child = spawn(binary, args, { env: this.env, stdio: ["ignore", "pipe", "inherit"] });
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`local-gateway ${args[0]} exited ${code}`))));
    });
  }

  /** Starts serving (on the same port as before, after a restart). */
  serve() {
    return new Promise((resolve, reject) => {
      const child = spawn(binary, ["serve", "--port", String(this.port)], { env: this.env, stdio: ["ignore", "pipe", "inherit"] });
      this.child = child;
      let output = "";
      child.stdout.on("data", (chunk) => {
        output += chunk;
        const match = output.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (match && !this.ready) {
          this.ready = true;
          this.port = Number(match[1]);
          resolve(this);
        }
      });
      child.on("exit", (code) => {
        if (!this.ready) reject(new Error(`local-gateway serve exited ${code}`));
      });
    });
  }

  get http() {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws() {
    return `ws://127.0.0.1:${this.port}/api/v1/ws/chat`;
  }

  async token(user, tenant, name = user) {
    const response = await fetch(`${this.http}/api/v1/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user_id: user, tenant_id: tenant, name }),
    });
    return (await response.json()).token;
  }

  async stop() {
    if (!this.child) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
    this.child = null;
    this.ready = false;
  }

  async restart() {
    await this.stop();
    await this.serve();
  }
}

/** The length and, for a whole unfragmented text frame, the text of the WebSocket frame at the
 * start of `bytes`; null until it is complete. */
function frameAt(bytes) {
  if (bytes.length < 2) return null;
  let length = bytes[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = bytes.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    length = Number(bytes.readBigUInt64BE(2));
    offset = 10;
  }
  if (bytes[1] & 0x80) offset += 4;
  if (bytes.length < offset + length) return null;
  return { size: offset + length, text: bytes[0] === 0x81 ? bytes.toString("utf8", offset, offset + length) : null };
}

/** A TCP proxy to `port` that can go down (dropping every connection) and come back, and drop
 * chosen frames from the server (a post that never arrived). While it is down, connection
 * attempts hang until it is back, as they do in a network outage (refused at once, they would
 * count as refusals and make the client give up when the outage outlasts three of them). */
export class Proxy {
  constructor(port) {
    this.port = port;
    this.sockets = new Set();
    this.down = false;
    this.waiting = [];
    this.drops = [];
    this.server = net.createServer((client) => {
      this.track(client);
      if (this.down) this.waiting.push(client);
      else this.connect(client);
    });
  }

  track(socket) {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
  }

  connect(client) {
    const upstream = net.connect(this.port, "127.0.0.1");
    this.track(upstream);
    client.pipe(upstream);
    this.relay(upstream, client);
  }

  /** Drops the next frame from the server for which `match(frame)` (parsed JSON) is true;
   * resolves with that frame once dropped. */
  dropNext(match) {
    return new Promise((resolve) => this.drops.push({ match, resolve }));
  }

  /** Server to client: the HTTP upgrade response, then frames passed on whole unless dropped. */
  relay(upstream, client) {
    let pending = Buffer.alloc(0);
    let upgraded = false;
    upstream.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      if (!upgraded) {
        const end = pending.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        client.write(pending.subarray(0, end + 4));
        pending = pending.subarray(end + 4);
      }
      for (let frame = frameAt(pending); frame; frame = frameAt(pending)) {
        if (!this.dropped(frame.text)) client.write(pending.subarray(0, frame.size));
        pending = pending.subarray(frame.size);
      }
    });
    upstream.on("end", () => client.end());
  }

  dropped(text) {
    if (text === null || this.drops.length === 0) return false;
    const frame = JSON.parse(text);
    const index = this.drops.findIndex(({ match }) => match(frame));
    if (index < 0) return false;
    this.drops.splice(index, 1)[0].resolve(frame);
    return true;
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(this.server.address().port)));
  }

  cut() {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore() {
    this.down = false;
    for (const client of this.waiting.splice(0)) if (!client.destroyed) this.connect(client);
  }

  close() {
    this.cut();
    this.server.close();
  }
}

export const tenant = () => `js-${randomUUID()}`;
