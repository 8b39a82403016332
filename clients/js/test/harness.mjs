// Test helpers: the real local gateway binary on a free port (restartable on the same port),
// tokens (development ones, or minted here with any lifetime), and a TCP proxy that fails like
// a network: it goes down and comes back, drops or delays frames either way, cuts on a frame.
import { spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
export const binary = path.join(target, "debug", "local-gateway");
export const screenshots = target;

export const WAIT_MS = 10_000;

/** Resolves when `check()` is truthy, polling events already on their way; fails after `wait`. */
export async function until(check, what, { wait = WAIT_MS } = {}) {
  const deadline = Date.now() + wait;
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

  /** A token signed here with the gateway's secret, living `ttlSeconds`. */
  mint(user, tenant, ttlSeconds, name = user) {
    const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: user, tenant_id: tenant, name, iat: now, exp: now + ttlSeconds })}`;
    return `${body}.${createHmac("sha256", this.env.JWT_SECRET_KEY).update(body).digest("base64url")}`;
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
 * start of `bytes` (unmasked, for frames from the client); null until it is complete. */
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
  const masked = (bytes[1] & 0x80) !== 0;
  const mask = masked ? bytes.subarray(offset, offset + 4) : null;
  if (masked) offset += 4;
  if (bytes.length < offset + length) return null;
  let text = null;
  if (bytes[0] === 0x81) {
    const payload = Buffer.from(bytes.subarray(offset, offset + length));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
    text = payload.toString("utf8");
  }
  return { size: offset + length, text };
}

/** One direction of a proxied connection: the HTTP head passed on, then whole frames, each
 * dropped, held back or delayed as the proxy says, in order. */
class Pipe {
  constructor(proxy, from, to, direction) {
    Object.assign(this, { proxy, from, to, direction });
    this.pending = Buffer.alloc(0);
    this.upgraded = false;
    this.chain = Promise.resolve();
    from.on("data", (chunk) => this.data(chunk));
    from.on("end", () => (this.chain = this.chain.then(() => to.end())));
  }

  data(chunk) {
    this.pending = Buffer.concat([this.pending, chunk]);
    if (!this.upgraded) {
      const end = this.pending.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.pending.subarray(0, end + 4);
      this.upgraded = true;
      this.raw = !/^(GET [^\r]*\r\n[\s\S]*upgrade: websocket|HTTP\/1\.1 101)/i.test(head.toString("latin1"));
      this.forward(head, null);
      this.pending = this.pending.subarray(end + 4);
    }
    if (this.raw) {
      this.forward(this.pending, null);
      this.pending = Buffer.alloc(0);
      return;
    }
    for (let frame = frameAt(this.pending); frame; frame = frameAt(this.pending)) {
      this.forward(Buffer.from(this.pending.subarray(0, frame.size)), frame.text);
      this.pending = this.pending.subarray(frame.size);
    }
  }

  /** Passes `bytes` on after this direction's delay (order kept), unless a rule drops it or
   * cuts the connection at it. */
  forward(bytes, text) {
    if (this.upgraded && !this.raw && this.proxy.silent) return;
    const frame = text === null ? null : JSON.parse(text);
    if (frame && this.proxy.cutsAt(this.direction, frame)) return;
    if (frame && this.proxy.drops(this.direction, frame)) return;
    const delay = this.proxy.delayOf(this.direction, frame);
    this.chain = this.chain.then(async () => {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (!this.to.destroyed) this.to.write(bytes);
    });
  }
}

/** A TCP proxy to `port` that can go down (dropping every connection) and come back, drop or
 * delay frames in either direction (`up`: client to server, `down`: server to client), and cut
 * every connection when a chosen frame passes. Plain HTTP passes through. While it is down,
 * WebSocket attempts hang until it is back, as in a network outage. */
export class Proxy {
  constructor(port) {
    this.port = port;
    this.sockets = new Set();
    this.down = false;
    this.waiting = [];
    this.rules = [];
    this.delays = { up: () => 0, down: () => 0 };
    this.server = net.createServer((client) => {
      this.track(client);
      client.once("data", (first) => {
        client.pause();
        client.unshift(first);
        if (this.down && /upgrade: websocket/i.test(first.toString("latin1"))) this.waiting.push(client);
        else this.connect(client);
      });
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
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
    new Pipe(this, client, upstream, "up");
    new Pipe(this, upstream, client, "down");
    client.resume();
  }

  /** Drops the next frame going `direction` for which `match(frame)` is true; resolves with it. */
  dropNext(match, direction = "down") {
    return new Promise((resolve) => this.rules.push({ kind: "drop", direction, match, resolve }));
  }

  /** Cuts every connection (the proxy going down) when a frame going `direction` matches,
   * before it passes; resolves with it. */
  cutAt(match, direction = "down") {
    return new Promise((resolve) => this.rules.push({ kind: "cut", direction, match, resolve }));
  }

  /** Delays every frame going `direction` by `ms(frame)` milliseconds (order kept). */
  delay(direction, ms) {
    this.delays[direction] = typeof ms === "function" ? ms : () => ms;
  }

  delayOf(direction, frame) {
    return this.delays[direction](frame ?? {});
  }

  take(kind, direction, frame) {
    const index = this.rules.findIndex((r) => r.kind === kind && r.direction === direction && r.match(frame));
    if (index < 0) return false;
    this.rules.splice(index, 1)[0].resolve(frame);
    return true;
  }

  drops(direction, frame) {
    return this.take("drop", direction, frame);
  }

  cutsAt(direction, frame) {
    if (!this.take("cut", direction, frame)) return false;
    this.cut();
    return true;
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(this.server.address().port)));
  }

  get ws() {
    return `ws://127.0.0.1:${this.server.address().port}/api/v1/ws/chat`;
  }

  get http() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  /** Passes nothing on either way, without closing: a link that died without a word (new
   * attempts hang). `restore()` ends it. */
  stall() {
    this.silent = true;
    this.down = true;
  }

  cut() {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore() {
    this.down = false;
    this.silent = false;
    for (const client of this.waiting.splice(0)) if (!client.destroyed) this.connect(client);
  }

  close() {
    this.cut();
    this.server.close();
  }
}

export const tenant = () => `js-${randomUUID()}`;
