// The benchmark's peer: what a team would otherwise deploy, a Socket.IO chat server scaled out
// with the Redis adapter. Rooms and relay only; unlike ours it stores nothing.
//   PORT=0 REDIS_URL=redis://127.0.0.1:6379 node server.mjs   (prints "listening on PORT")
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const pub = createClient({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, { adapter: createAdapter(pub, sub), transports: ["websocket"] });

io.on("connection", (socket) => {
  const user = String(socket.handshake.auth?.user ?? socket.id);
  socket.on("join_room", (roomId, ack) => {
    socket.join(roomId);
    ack?.({ type: "room_joined", room_id: roomId });
  });
  socket.on("send_message", ({ room_id, content }, ack) => {
    const message = { id: randomUUID(), room_id, sender_id: user, content, created_at: new Date().toISOString() };
    socket.to(room_id).emit("new_message", { type: "new_message", message });
    ack?.({ type: "message_sent", message });
  });
});

http.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening on ${http.address().port}`);
});
