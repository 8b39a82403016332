// Test helpers: the real local gateway binary on a free port (restartable on the same port),
// development tokens, and a TCP proxy that can drop connections like a network failure.
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

/** A TCP proxy to `port` that can go down (dropping every connection) and come back. */
export class Proxy {
  constructor(port) {
    this.sockets = new Set();
    this.down = false;
    this.server = net.createServer((client) => {
      if (this.down) return client.destroy();
      const upstream = net.connect(port, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
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
  }

  close() {
    this.cut();
    this.server.close();
  }
}

export const tenant = () => `js-${randomUUID()}`;
