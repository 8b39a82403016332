// The load generator of bench/src/load.rs (fan_out), for the Socket.IO peer and with its own
// client library: `rooms` rooms of `size` members; in each, `senders` members send `perSender`
// messages, each after the previous one's acknowledgement; latency from send to each delivery.
//   node load.mjs URL SIZE SENDERS PER_SENDER ROOMS   → one JSON line of figures
import { io } from "socket.io-client";

const [url, size, senders, perSender, rooms] = [
  process.argv[2],
  ...process.argv.slice(3, 7).map(Number),
];
const DEADLINE_MS = 60_000;
const now = () => performance.now() * 1000; // microseconds

function connect(user) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ["websocket"], auth: { user }, forceNew: true, reconnection: false });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

async function inBatches(count, batch, make) {
  const out = [];
  for (let i = 0; i < count; i += batch) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => make(i + j)))));
  }
  return out;
}

const clients = await inBatches(size * rooms, 100, (i) => connect(`u${i}`));
await Promise.all(clients.map((socket, i) => socket.emitWithAck("join_room", `room-${Math.floor(i / size)}`)));

const latencies = [];
let delivered = 0;
const expected = rooms * senders * perSender * (size - 1);
let allDelivered;
const done = new Promise((resolve) => (allDelivered = resolve));
for (const socket of clients) {
  socket.on("new_message", ({ message }) => {
    latencies.push(now() - Number(message.content.slice("bench:".length)));
    if (++delivered === expected) allDelivered();
  });
}

const started = performance.now();
const sending = clients
  .filter((_, i) => i % size < senders)
  .map(async (socket, i) => {
    const room = `room-${Math.floor((i / senders))}`;
    for (let n = 0; n < perSender; n++) {
      await socket.emitWithAck("send_message", { room_id: room, content: `bench:${now()}` });
    }
  });
await Promise.all(sending);
await Promise.race([done, new Promise((resolve) => setTimeout(resolve, DEADLINE_MS))]);
const elapsed = (performance.now() - started) / 1000;

latencies.sort((a, b) => a - b);
const at = (q) => latencies[Math.floor((latencies.length - 1) * q)] ?? 0;
console.log(JSON.stringify({
  messages_per_sec: (rooms * senders * perSender) / elapsed,
  deliveries_per_sec: latencies.length / elapsed,
  delivered: latencies.length,
  expected,
  p50_us: at(0.5),
  p99_us: at(0.99),
  p999_us: at(0.999),
}));
for (const socket of clients) socket.close();
process.exit(0);
