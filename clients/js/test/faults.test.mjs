// The client through a network that fails: every scenario ends with each message of every room
// delivered exactly once and in order (events and room state), and unread counts equal to the
// server's. CHAT_FAULT_ROUNDS=N adds a randomized run of N rounds of mixed faults.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";

import { ChatClient, ChatError } from "../dist/index.js";
import { Gateway, Proxy, WAIT_MS, tenant, until } from "./harness.mjs";

let gateway;
before(async () => {
  gateway = await Gateway.start();
});
after(() => gateway.stop());

const FAST = { WebSocket, backoffBaseMs: 20, backoffCapMs: 300, attemptTimeoutMs: 2000, requestTimeoutMs: 3000 };

async function connected(url, token, options = {}) {
  const client = new ChatClient({ url, token, ...FAST, ...options });
  await client.connect();
  return client;
}

/** Every `new_message` event of a client, per room. */
function record(client) {
  const byRoom = new Map();
  client.on("new_message", ({ message, live }) => {
    if (!byRoom.has(message.room_id)) byRoom.set(message.room_id, []);
    byRoom.get(message.room_id).push({ ...message, live });
  });
  return byRoom;
}

/** Sends, waiting out rate limits (test setup, not the client under test). */
async function paced(call) {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ChatError) || error.code !== "rate_limited") throw error;
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs));
    }
  }
}

async function serverHistory(client, roomId) {
  const messages = [];
  for (let after = "0"; ; ) {
    const page = await paced(() => client.getHistory(roomId, { after, limit: 100 }, { timeoutMs: WAIT_MS }));
    messages.push(...page.messages);
    if (!page.has_more) return messages;
    after = page.next_cursor;
  }
}

const ids = (messages) => messages.filter((m) => m.message_type !== "system").map((m) => m.id);

/** Waits until `client` has every message of `rooms` exactly once and in order, in its events
 * and its room state, and its unread counts are the server's. */
async function converged(client, events, rooms, { wait = WAIT_MS } = {}) {
  const deadline = Date.now() + wait;
  for (const roomId of rooms) {
    const expected = ids(await serverHistory(client, roomId));
    for (;;) {
      const seen = ids(events.get(roomId) ?? []);
      if (seen.length >= expected.length || Date.now() > deadline) {
        assert.deepEqual(seen, expected, `room ${roomId}: events`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const all = events.get(roomId) ?? [];
    assert.equal(new Set(all.map((m) => m.id)).size, all.length, "no message twice");
    const seqs = all.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in seq order");
    assert.deepEqual(ids(client.room(roomId).messages), expected, `room ${roomId}: state`);
  }
  const { rooms: counted } = await paced(() => client.getUnread({ timeoutMs: WAIT_MS }));
  for (const roomId of rooms) {
    const server = counted.find((u) => u.room_id === roomId)?.unread_count ?? 0;
    assert.equal(client.room(roomId).unread, server, `room ${roomId}: unread`);
  }
}

/** Alice behind a proxy, bob and carol direct, in `n` shared rooms. */
async function cast(n = 1, aliceOptions = {}, on = gateway) {
  const t = tenant();
  const proxy = new Proxy(on.port);
  await proxy.listen();
  const alice = await connected(proxy.ws, await on.token("alice", t), aliceOptions);
  const events = record(alice);
  const bob = await connected(on.ws, await on.token("bob", t));
  const carol = await connected(on.ws, await on.token("carol", t));
  const rooms = [];
  for (let i = 0; i < n; i++) {
    const { room } = await paced(() => bob.createRoom({ name: `r${i}`, room_type: "group", participants: ["alice", "carol"] }));
    rooms.push(room.id);
  }
  await until(() => rooms.every((id) => alice.room(id).room), "alice to know her rooms");
  const done = () => {
    for (const c of [alice, bob, carol]) c.close();
    proxy.close();
  };
  return { t, proxy, alice, bob, carol, rooms, events, done };
}

const say = (client, room, text) => paced(() => client.sendMessage(room, text));

test("drops and delays both ways: lost frames either way, slow links, outages", async () => {
  const { proxy, alice, bob, carol, rooms, events, done } = await cast(2, { requestTimeoutMs: 1500 });
  const [a, b] = rooms;
  proxy.delay("down", () => Math.random() * 20);
  proxy.delay("up", () => Math.random() * 20);
  await say(bob, a, "b1");
  // A message to alice lost on the way: the next one shows the gap, the catch-up brings it.
  const lost = proxy.dropNext((f) => f.type === "new_message" && f.message.content === "c1");
  await say(carol, a, "c1");
  await lost;
  await say(bob, a, "b2");
  // Alice's own send lost on the way up: it times out, fails, and a retry with the same id is stored once.
  const lostUp = proxy.dropNext((f) => f.type === "send_message", "up");
  await assert.rejects(alice.sendMessage(b, "a1"), (error) => error.code === "timeout");
  await lostUp;
  const [failed] = alice.room(b).pending.values();
  assert.equal(failed.status, "failed");
  await alice.room(b).retry(failed.client_msg_id);
  assert.equal(alice.room(b).pending.size, 0);
  // Outages while both keep sending to both rooms.
  for (const round of [1, 2]) {
    proxy.cut();
    await until(() => alice.state === "reconnecting", "alice to notice");
    await Promise.all([say(bob, a, `b-out${round}`), say(carol, b, `c-out${round}`), say(bob, b, `b-out${round}`)]);
    proxy.restore();
    await say(carol, a, `c-back${round}`);
  }
  await converged(alice, events, rooms);
  // A send stored but its reply lost: it times out, and the retry gets the stored one back (once
  // caught up: a catch-up running would fetch it and settle it first).
  const lostReply = proxy.dropNext((f) => f.type === "message_sent");
  await assert.rejects(alice.sendMessage(b, "a2"), (error) => error.code === "timeout");
  await lostReply;
  const [unsure] = alice.room(b).pending.values();
  assert.equal((await alice.room(b).retry(unsure.client_msg_id)).duplicate, true);
  // A history reply later than its request waits: the catch-up asks again, the late one is ignored.
  proxy.cut();
  await until(() => alice.state === "reconnecting", "alice to notice");
  await say(bob, a, "b-late");
  let slowed = false;
  proxy.delay("down", (f) => (f.type === "history" && !slowed ? ((slowed = true), 2500) : 0));
  proxy.restore();
  await converged(alice, events, rooms);
  assert.ok(slowed);
  for (const [room, text] of [[b, "a1"], [b, "a2"]]) {
    const stored = (await alice.getHistory(room, { limit: 100 })).messages.filter((m) => m.content === text);
    assert.equal(stored.length, 1, `${text} is stored once`);
  }
  done();
});

test("a gateway restart, and messages sent while it is down", async () => {
  const { alice, bob, carol, rooms, events, done } = await cast(2);
  await say(bob, rooms[0], "before");
  await gateway.stop();
  const sending = Promise.all([bob.sendMessage(rooms[0], "queued by bob"), carol.sendMessage(rooms[1], "queued by carol")]);
  await gateway.serve();
  await sending;
  await say(bob, rooms[1], "after");
  await until(() => alice.state === "open", "alice back");
  await converged(alice, events, rooms);
  done();
});

test("a close in the middle of a catch-up, with others sending during the catch-up", async () => {
  const { proxy, alice, bob, carol, rooms, events, done } = await cast(1);
  const [room] = rooms;
  proxy.cut();
  await until(() => alice.state === "reconnecting", "alice to notice");
  for (let i = 0; i < 230; i++) await say(bob, room, `missed ${i}`);
  // The first history page back is cut off; the second connection's catch-up runs slowly while
  // bob and carol keep sending: their live messages wait for it.
  const cut = proxy.cutAt((f) => f.type === "history");
  proxy.restore();
  await cut;
  proxy.delay("down", (f) => (f.type === "history" ? 150 : 0));
  let during = null;
  proxy.delay("up", (f) => {
    if (f.type === "get_history" && !during) {
      during = Promise.all(Array.from({ length: 10 }, (_, i) => say(i % 2 ? bob : carol, room, `during ${i}`)));
    }
    return 0;
  });
  proxy.restore();
  await until(() => during, "the catch-up to start");
  await during;
  await converged(alice, events, rooms);
  const caughtUp = events.get(room).filter((m) => !m.live).length;
  assert.ok(caughtUp >= 200, `most came from the catch-up (${caughtUp})`);
  done();
});

test("an expired token: refreshed on the connection, and a fresh one after an outage outlasts it", async () => {
  const t = tenant();
  const proxy = new Proxy(gateway.port);
  await proxy.listen();
  let minted = 0;
  const token = () => (minted++, gateway.mint("alice", t, 3));
  const alice = await connected(proxy.ws, token, { refreshMarginMs: 2000 });
  const events = record(alice);
  const states = [];
  alice.on("state", (s) => states.push(s));
  const bob = await connected(gateway.ws, await gateway.token("bob", t));
  const { room: { id: room } } = await bob.createRoom({ name: "Expiry", room_type: "group", participants: ["alice"] });
  // Past the first token's expiry on one connection: refreshed before it, nothing dropped.
  await until(() => minted >= 5, "refreshes past the first token's expiry", { wait: 8000 });
  await alice.sendMessage(room, "still here");
  assert.deepEqual(states, [], "no reconnect");
  // An outage longer than a token lives: the reconnect asks for a fresh one.
  proxy.cut();
  await until(() => alice.state === "reconnecting", "alice to notice");
  await new Promise((resolve) => setTimeout(resolve, 3500)); // the outage itself: longer than a token lives
  await bob.sendMessage(room, "while alice was away");
  proxy.restore();
  await converged(alice, events, [room]);
  assert.equal(alice.state, "open");
  // A fixed token that expired is a refusal: the one dead end there is.
  const stale = new ChatClient({ url: gateway.ws, token: gateway.mint("alice", t, -60), ...FAST });
  await assert.rejects(stale.connect(), (error) => error.code === "connection_refused");
  for (const c of [alice, bob]) c.close();
  proxy.close();
});

test("a user in 100 rooms reconnects under the frame limit: every room caught up", async () => {
  const limited = await Gateway.start({ RATE_LIMIT_FRAMES: "30/60" });
  try {
    const { proxy, alice, bob, carol, rooms, events, done } = await cast(100, {}, limited);
    proxy.cut();
    await until(() => alice.state === "reconnecting", "alice to notice");
    for (const [i, room] of rooms.entries()) await say(i % 2 ? bob : carol, room, `missed in ${i}`);
    proxy.restore();
    await converged(alice, events, rooms, { wait: 30_000 });
    assert.equal(alice.rooms.length, 100);
    done();
  } finally {
    await limited.stop();
  }
});

test("a link that dies without closing is found by the heartbeat; reconnect() skips the backoff", async () => {
  const { proxy, alice, bob, rooms, events, done } = await cast(1, { heartbeatMs: 300, heartbeatTimeoutMs: 300, backoffBaseMs: 60_000, backoffCapMs: 60_000 });
  proxy.stall();
  await until(() => alice.state === "reconnecting", "the heartbeat to notice");
  await say(bob, rooms[0], "while the link was dead");
  proxy.restore();
  // The next attempt is up to a minute away: "reconnect now" does not wait for it.
  alice.reconnect();
  await until(() => alice.state === "open", "the manual reconnect");
  await converged(alice, events, rooms);
  done();
});

test("rooms left or removed while away are forgotten, not rejoined", async () => {
  const { proxy, alice, bob, rooms, done } = await cast(2);
  const removed = [];
  alice.on("room_removed", (room) => removed.push(room.id));
  proxy.cut();
  await until(() => alice.state === "reconnecting", "alice to notice");
  await bob.removeParticipant(rooms[0], "alice");
  proxy.restore();
  await until(() => removed.length === 1, "the room to be forgotten");
  assert.deepEqual(removed, [rooms[0]]);
  assert.deepEqual(alice.rooms.map((r) => r.id), [rooms[1]]);
  const { participants } = await bob.joinRoom(rooms[0]);
  assert.ok(!participants.some((p) => p.user_id === "alice"), "not rejoined");
  done();
});

const ROUNDS = Number(process.env.CHAT_FAULT_ROUNDS ?? 0);
test(`randomized faults (${ROUNDS} rounds; CHAT_FAULT_ROUNDS=N)`, { skip: ROUNDS === 0 }, async () => {
  const { proxy, alice, bob, carol, rooms, events, done } = await cast(5, { requestTimeoutMs: 1000 });
  const pick = (list) => list[Math.floor(Math.random() * list.length)];
  let n = 0;
  for (let round = 0; round < ROUNDS; round++) {
    proxy.delay("down", () => (Math.random() < 0.5 ? Math.random() * 30 : 0));
    proxy.delay("up", () => (Math.random() < 0.5 ? Math.random() * 30 : 0));
    const traffic = Promise.all(Array.from({ length: 8 }, () => say(pick([bob, carol]), pick(rooms), `m${n++}`)));
    const fault = pick(["cut", "cut-at-history", "drop", "restart", "none"]);
    if (fault === "cut") {
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 500));
      proxy.restore();
    } else if (fault === "cut-at-history") {
      proxy.cutAt((f) => f.type === "history").then(() => setTimeout(() => proxy.restore(), Math.random() * 300));
      proxy.cut();
      proxy.restore();
    } else if (fault === "drop") {
      proxy.dropNext((f) => f.type === "new_message");
    } else if (fault === "restart") {
      await gateway.restart();
    }
    await traffic;
    if (Math.random() < 0.3) await alice.sendMessage(pick(rooms), `a${n++}`).catch(() => {});
  }
  proxy.delay("down", 0);
  proxy.delay("up", 0);
  proxy.restore();
  proxy.rules.length = 0;
  // One more message per room: a dropped last one shows as a gap.
  for (const room of rooms) await say(bob, room, "last");
  await until(() => alice.state === "open", "alice connected");
  for (const room of rooms) {
    for (const local of [...alice.room(room).pending.values()]) await alice.room(room).retry(local.client_msg_id);
  }
  await converged(alice, events, rooms, { wait: 30_000 });
  done();
});
