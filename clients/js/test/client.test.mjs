// The client library against a real local gateway.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";

import { ChatClient, ChatError } from "../dist/index.js";
import { Gateway, Proxy, tenant, until } from "./harness.mjs";

let gateway;
before(async () => {
  gateway = await Gateway.start();
});
after(() => gateway.stop());

async function client(url, token, options = {}) {
  const c = new ChatClient({ url, token, WebSocket, backoffBaseMs: 50, backoffCapMs: 500, attemptTimeoutMs: 2000, ...options });
  await c.connect();
  return c;
}

test("two users chat, replies match their requests, errors are typed", async () => {
  const t = tenant();
  const alice = await client(gateway.ws, await gateway.token("alice", t, "Alice"));
  const bob = await client(gateway.ws, await gateway.token("bob", t, "Bob"));
  assert.equal(alice.session.user_id, "alice");
  const received = [];
  bob.on("new_message", ({ message, live }) => message.sender_id === "alice" && received.push([message.content, live]));

  const { room } = await alice.createRoom({ name: "Lunch", room_type: "group", participants: ["bob"] });
  const [first, second] = await Promise.all([alice.sendMessage(room.id, "pizza?"), alice.getHistory(room.id)]);
  assert.equal(first.type, "message_sent");
  assert.equal(first.message.content, "pizza?");
  assert.equal(second.type, "history");
  await until(() => received.length === 1, "bob's message");
  assert.deepEqual(received, [["pizza?", true]]);
  assert.deepEqual(bob.room(room.id).timeline.map((m) => m.content), ["pizza?"], "the room's state holds it");
  assert.equal(bob.room(room.id).unread, 1);

  // Pagination helpers: pages back from the newest, or forward from a position.
  await alice.sendMessage(room.id, "and pasta?");
  const pages = async (options) => {
    const seen = [];
    for await (const page of alice.historyPages(room.id, { limit: 1, ...options })) seen.push(page.messages.map((m) => m.content));
    return seen.flat().filter((c) => c !== "");
  };
  assert.deepEqual((await pages({})).filter((c) => c.endsWith("?")), ["and pasta?", "pizza?"]);
  assert.deepEqual((await pages({ after: "0" })).filter((c) => c.endsWith("?")), ["pizza?", "and pasta?"]);

  const typing = new Promise((resolve) => alice.on("typing_start", resolve));
  bob.typingStart(room.id);
  assert.equal((await typing).user_id, "bob");

  await assert.rejects(alice.joinRoom("6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"), (error) => {
    assert.ok(error instanceof ChatError);
    assert.equal(error.code, "not_found");
    return true;
  });
  alice.close();
  bob.close();
});

test("a refused token rejects connect, after one more try with a fresh token from a token function", async () => {
  const c = new ChatClient({ url: gateway.ws, token: "forged", WebSocket, backoffBaseMs: 10 });
  await assert.rejects(c.connect(), (error) => error instanceof ChatError && error.code === "connection_refused");
  assert.equal(c.state, "closed");

  let calls = 0;
  const refused = new ChatClient({ url: gateway.ws, token: () => (calls++, "forged"), WebSocket, backoffBaseMs: 10 });
  await assert.rejects(refused.connect(), (error) => error.code === "connection_refused");
  assert.equal(calls, 2);
});

test("a token function that throws is retried with backoff, and connect() settles either way", async () => {
  const t = tenant();
  let calls = 0;
  const flaky = new ChatClient({
    url: gateway.ws,
    WebSocket,
    backoffBaseMs: 10,
    backoffCapMs: 50,
    token: async () => {
      if (++calls < 3) throw new Error("the token service is down");
      return gateway.token("alice", t);
    },
  });
  assert.equal((await flaky.connect()).user_id, "alice");
  assert.equal(calls, 3);
  flaky.close();

  const never = new ChatClient({ url: gateway.ws, WebSocket, backoffBaseMs: 10, backoffCapMs: 50, connectTimeoutMs: 300, token: () => Promise.reject(new Error("down")) });
  await assert.rejects(never.connect(), (error) => error.code === "timeout");
  assert.equal(never.state, "connecting", "still trying");
  const abort = new AbortController();
  const aborted = assert.rejects(never.connect({ signal: abort.signal }), (error) => error.code === "aborted");
  abort.abort();
  await aborted;
  never.close();
  await assert.rejects(never.connect(), (error) => error.code === "timeout" || error.code === "closed");
  never.close();
});

test("a browser-like socket that hides the upgrade's status: the session route tells a refused token from the network", async () => {
  // The ws package's error says "Unexpected server response: 401"; browsers say nothing.
  class Silent extends WebSocket {
    set onerror(handler) {
      super.onerror = handler && (() => handler({}));
    }
  }
  const refused = new ChatClient({ url: gateway.ws, token: "forged", WebSocket: Silent, backoffBaseMs: 10 });
  await assert.rejects(refused.connect(), (error) => error.code === "connection_refused");
  // Nothing listening: the network, retried until connect() gives up waiting.
  const nowhere = new ChatClient({ url: "ws://127.0.0.1:9/api/v1/ws/chat", token: "forged", WebSocket: Silent, backoffBaseMs: 10, backoffCapMs: 20, connectTimeoutMs: 500 });
  await assert.rejects(nowhere.connect(), (error) => error.code === "timeout");
  assert.equal(nowhere.state, "connecting");
  nowhere.close();
});

test("per-call timeouts and AbortSignal; a create_room whose reply is lost is resent into the same room", async () => {
  const t = tenant();
  const proxy = new Proxy(gateway.port);
  await proxy.listen();
  const alice = await client(proxy.ws, await gateway.token("alice", t));
  // A reply held back longer than the call waits.
  proxy.delay("down", (frame) => (frame.type === "pong" ? 500 : 0));
  await assert.rejects(alice.ping({ timeoutMs: 100 }), (error) => error.code === "timeout");
  const abort = new AbortController();
  const aborted = assert.rejects(alice.ping({ signal: abort.signal }), (error) => error.code === "aborted");
  abort.abort();
  await aborted;
  proxy.delay("down", 0);

  // create_room stored but its reply lost, then the connection drops: resent on the next one
  // with the same client_room_id, it answers with the room the first attempt created.
  const lost = proxy.dropNext((frame) => frame.type === "room_created");
  const creating = alice.createRoom({ name: "Once", room_type: "group" });
  await lost;
  proxy.cut();
  await until(() => alice.state === "reconnecting", "alice to notice");
  proxy.restore();
  const { room } = await creating;
  const { rooms } = await alice.listRooms();
  assert.deepEqual(rooms.map((r) => r.room.id), [room.id]);
  alice.close();
  proxy.close();
});

test("a forced disconnect mid-conversation ends with every message delivered exactly once, in order", async () => {
  const t = tenant();
  const proxy = new Proxy(gateway.port);
  const proxied = `ws://127.0.0.1:${await proxy.listen()}/api/v1/ws/chat`;
  const alice = await client(proxied, await gateway.token("alice", t));
  const bob = await client(gateway.ws, await gateway.token("bob", t));
  const { room } = await bob.createRoom({ name: "Flaky", room_type: "group", participants: ["alice"] });
  await until(() => alice.request({ type: "get_unread" }), "alice to be set");

  const seenByAlice = [];
  const seenByBob = [];
  alice.on("new_message", ({ message }) => message.sender_id === "bob" && seenByAlice.push(message.content));
  bob.on("new_message", ({ message }) => message.sender_id === "alice" && seenByBob.push(message.content));
  const states = [];
  alice.on("state", (s) => states.push(s));
  const typing = [];
  bob.on("typing_start", (frame) => typing.push(frame));

  for (const i of [0, 1, 2]) await bob.sendMessage(room.id, `m${i}`);
  await until(() => seenByAlice.length === 3, "the first messages");

  proxy.cut();
  await until(() => alice.state === "reconnecting", "alice to notice the drop");
  for (const i of [3, 4, 5, 6, 7]) await bob.sendMessage(room.id, `m${i}`);
  // Sent while disconnected: queued, shown as pending, sent once after the reconnect.
  const queued = alice.sendMessage(room.id, "from alice while offline");
  alice.typingStart(room.id); // dropped: sent late, it would say she is typing when she is not
  assert.deepEqual([...alice.room(room.id).pending.values()].map((p) => [p.content, p.status]), [["from alice while offline", "pending"]]);
  proxy.restore();

  assert.equal((await queued).message.content, "from alice while offline");
  await until(() => seenByAlice.length === 8, "the catch-up");
  await bob.sendMessage(room.id, "m8");
  await until(() => seenByAlice.length === 9, "the live message after the reconnect");
  await until(() => seenByBob.length === 1, "alice's queued message");

  assert.deepEqual(seenByAlice, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
  assert.deepEqual(seenByBob, ["from alice while offline"]);
  assert.deepEqual(typing, [], "no typing frame sent late");
  assert.ok(states.includes("reconnecting") && states.at(-1) === "open", String(states));
  const history = await bob.getHistory(room.id, { limit: 100 });
  assert.equal(history.messages.filter((m) => m.content === "from alice while offline").length, 1);
  alice.close();
  bob.close();
  proxy.close();
});

test("a dropped new_message is fetched when room_seq skips ahead, and emitted in seq order", async () => {
  const t = tenant();
  const proxy = new Proxy(gateway.port);
  const proxied = `ws://127.0.0.1:${await proxy.listen()}/api/v1/ws/chat`;
  const alice = await client(proxied, await gateway.token("alice", t));
  const bob = await client(gateway.ws, await gateway.token("bob", t));
  const { room } = await bob.createRoom({ name: "Lossy", room_type: "group", participants: ["alice"] });
  const byAlice = [];
  alice.on("new_message", ({ message }) => byAlice.push(message));
  const toBob = [];
  bob.on("new_message", (frame) => frame.message.sender_id === "alice" && toBob.push(frame));
  const contents = () => byAlice.filter((m) => m.sender_id === "bob").map((m) => m.content);
  const lost = (content) => proxy.dropNext((f) => f.type === "new_message" && f.message.content === content);

  await bob.sendMessage(room.id, "m0");
  await until(() => contents().length === 1, "m0");

  // m1 never reaches alice; m2 skips a room_seq, so she fetches m1 and gets both, m1 first.
  const m1 = lost("m1");
  await bob.sendMessage(room.id, "m1");
  assert.deepEqual(Object.keys(await m1).sort(), ["message", "type"], "the same bytes for everyone: no unread");
  await bob.sendMessage(room.id, "m2");
  await until(() => contents().length === 3, "m1 fetched after m2 showed the gap");
  assert.deepEqual(contents(), ["m0", "m1", "m2"]);

  // m3 never reaches alice; her own next message skips a room_seq too.
  const m3 = lost("m3");
  await bob.sendMessage(room.id, "m3");
  await m3;
  await alice.sendMessage(room.id, "a4");
  await until(() => contents().length === 4, "m3 fetched after alice's own message showed the gap");
  assert.deepEqual(contents(), ["m0", "m1", "m2", "m3"]);

  const roomSeqs = byAlice.map((m) => m.room_seq);
  assert.deepEqual(roomSeqs, [...roomSeqs].sort((a, b) => a - b), "emitted in order");
  assert.equal(new Set(byAlice.map((m) => m.id)).size, byAlice.length, "each once");
  await until(() => toBob.length === 1, "alice's message to bob");
  assert.equal(toBob[0].message.content, "a4");
  assert.ok(!("unread" in toBob[0]), "new_message carries no unread");
  alice.close();
  bob.close();
  proxy.close();
});

test("rate limits come back as typed errors with the time to wait", async () => {
  const limited = await Gateway.start({ RATE_LIMIT_MESSAGES: "0.001/2" });
  try {
    const t = tenant();
    const alice = await client(limited.ws, await limited.token("alice", t), { retryRateLimited: false });
    const { room } = await alice.createRoom({ name: "Spam", room_type: "group" });
    await alice.sendMessage(room.id, "1");
    await alice.sendMessage(room.id, "2");
    await assert.rejects(alice.sendMessage(room.id, "3"), (error) => {
      assert.equal(error.code, "rate_limited");
      assert.ok(error.retryAfterMs > 0);
      return true;
    });
    alice.close();
  } finally {
    await limited.stop();
  }
});
