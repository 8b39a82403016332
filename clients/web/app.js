// The web chat page. Plain DOM on top of the client library; every piece of user text is set
// with textContent, never parsed as HTML.
import { ChatClient, ChatError } from "/lib/index.js";

const $ = (id) => document.getElementById(id);
const EMOJI = ["👍", "❤️", "😂", "🎉", "😮"];

const state = {
  client: null,
  me: null,
  rooms: new Map(), // room id -> { room, role, unread, mentions, capped }
  current: null,
  messages: new Map(), // room id -> Map(message id -> message)
  hasOlder: new Map(),
  members: new Map(), // room id -> participants
  presence: new Map(), // user id -> "online" | "offline"
  typing: new Map(), // room id -> Map(user id -> name)
  readUpTo: new Map(), // room id -> Map(user id -> seq read)
  replyTo: null,
  thread: null,
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter(Boolean));
  return node;
}

function show(error) {
  console.error(error);
  const banner = $("banner");
  banner.hidden = false;
  banner.textContent = error instanceof ChatError ? `${error.code}: ${error.message}` : String(error);
  setTimeout(() => updateBanner(), 4000);
}

function updateBanner() {
  const banner = $("banner");
  const connection = state.client?.state;
  banner.hidden = connection === "open";
  banner.textContent = connection === "reconnecting" ? "Reconnecting…" : connection === "closed" ? "Disconnected" : "";
  $("my-dot").className = `dot ${connection === "open" ? "online" : ""}`;
}

// ---- sign in ----

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  $("login-error").textContent = "";
  try {
    const response = await fetch("/api/v1/dev/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user_id: form.get("user"), tenant_id: form.get("tenant"), name: form.get("name") }),
    });
    if (!response.ok) throw new Error(`token refused (${response.status})`);
    const { token } = await response.json();
    await start(token);
  } catch (error) {
    $("login-error").textContent = String(error.message ?? error);
  }
});

async function start(token) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const client = new ChatClient({ url: `${scheme}://${location.host}/api/v1/ws/chat`, token });
  state.client = client;
  wire(client);
  const hello = await client.connect();
  state.me = hello;
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = hello.display_name;
  $("tenant").textContent = hello.tenant_id;
  document.title = `Chat — ${hello.display_name}`;
  await refreshRooms();
  for (const u of hello.unread) setUnread(u);
  renderRooms();
}

// ---- events ----

function wire(client) {
  client.on("state", updateBanner);
  client.on("failed", show);
  client.on("connection", async (hello) => {
    for (const roomId of state.rooms.keys()) setUnread(unreadIn(hello.unread, roomId));
    await refreshRooms();
    if (state.current) markRead(state.current);
  });
  client.on("new_message", ({ message }) => {
    addMessages(message.room_id, [message]);
    if (message.room_id === state.current && document.visibilityState === "visible") markRead(message.room_id);
    else if (message.sender_id !== state.me?.user_id && message.message_type !== "system") bump(message);
    clearTyping(message.room_id, message.sender_id);
    if (state.thread && message.reply_to === state.thread) openThread(state.thread);
    renderRooms();
  });
  for (const type of ["message_edited", "reaction_added", "reaction_removed"]) {
    client.on(type, (frame) => {
      if (frame.message) addMessages(frame.message.room_id, [frame.message]);
      else updateMessage(frame.room_id, frame.message_id, (m) => ({ ...m, reactions: frame.reactions }));
    });
  }
  client.on("message_deleted", (frame) => {
    updateMessage(frame.room_id, frame.message_id, (m) => ({ ...m, deleted_at: frame.deleted_at, content: "", attachments: [] }));
    // Only the server knows whether it was one of the unread (from the read position).
    if (state.rooms.get(frame.room_id)?.unread > 0) refreshUnread(frame.room_id).catch(show);
  });
  client.on("typing_start", ({ room_id, user_id, display_name }) => {
    if (!state.typing.has(room_id)) state.typing.set(room_id, new Map());
    state.typing.get(room_id).set(user_id, display_name);
    renderTyping();
  });
  client.on("typing_stop", ({ room_id, user_id }) => clearTyping(room_id, user_id));
  client.on("presence", ({ user_id, status }) => {
    state.presence.set(user_id, status);
    renderMembers();
    renderRooms();
  });
  client.on("messages_read", ({ room_id, user_id, message_ids }) => {
    // Read on another device of mine.
    if (user_id === state.me?.user_id && state.rooms.get(room_id)?.unread > 0) refreshUnread(room_id).catch(show);
    const messages = state.messages.get(room_id);
    const seqs = message_ids.map((id) => messages?.get(id)?.seq ?? 0);
    const newest = seqs.length ? Math.max(...seqs) : Math.max(0, ...[...(messages?.values() ?? [])].map((m) => m.seq));
    if (!state.readUpTo.has(room_id)) state.readUpTo.set(room_id, new Map());
    const reads = state.readUpTo.get(room_id);
    reads.set(user_id, Math.max(reads.get(user_id) ?? 0, newest));
    if (room_id === state.current) renderMessages();
  });
  for (const type of ["room_created", "added_to_room", "room_updated", "user_joined", "user_left", "user_removed", "role_changed", "user_banned"]) {
    client.on(type, async (frame) => {
      await refreshRooms();
      if ((frame.room?.id ?? frame.room_id) === state.current) await loadMembers(state.current);
    });
  }
  client.on("announcement", ({ content, from }) => show(`📣 ${from}: ${content}`));
}

// ---- rooms ----

async function refreshRooms() {
  const { rooms } = await state.client.listRooms();
  for (const summary of rooms) {
    const known = state.rooms.get(summary.room.id);
    state.rooms.set(summary.room.id, {
      ...summary,
      unread: known?.unread ?? summary.unread_count,
      mentions: known?.mentions ?? summary.mention_count,
      capped: known?.capped ?? summary.capped,
    });
  }
  renderRooms();
}

function setUnread({ room_id, unread_count, mention_count, capped }) {
  const entry = state.rooms.get(room_id);
  if (entry) {
    entry.unread = unread_count;
    entry.mentions = mention_count;
    entry.capped = capped;
  }
}

// new_message carries no counts: each one from someone else adds one (a capped count stays "1000+").
function bump(message) {
  const entry = state.rooms.get(message.room_id);
  if (!entry || entry.capped) return;
  entry.unread += 1;
  if (message.mentions.includes(state.me.user_id)) entry.mentions += 1;
}

// The connection frame and get_unread list the rooms with something unread: the rest have nothing.
function unreadIn(list, roomId) {
  return list.find((u) => u.room_id === roomId) ?? { room_id: roomId, unread_count: 0, mention_count: 0, capped: false };
}

async function refreshUnread(roomId) {
  const { rooms } = await state.client.getUnread();
  setUnread(unreadIn(rooms, roomId));
  renderRooms();
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren(
    ...[...state.rooms.values()].map(({ room, unread, mentions, capped }) => {
      const count = capped ? `${unread}+` : String(unread);
      const badge = unread > 0 ? el("span", { class: `badge ${mentions > 0 ? "mention" : ""}`, text: count, "data-testid": "badge" }) : null;
      return el(
        "li",
        { class: room.id === state.current ? "active" : "", "data-room": room.id, onclick: () => openRoom(room.id) },
        el("span", { text: room.room_type === "direct" ? "@" : "#", class: "kind" }),
        el("span", { text: room.name, "data-testid": "room-name" }),
        badge,
      );
    }),
  );
}

async function openRoom(roomId) {
  state.current = roomId;
  state.replyTo = null;
  const entry = state.rooms.get(roomId);
  $("room-name").textContent = entry?.room.name ?? roomId;
  $("room-meta").textContent = entry ? `${entry.room.room_type}${entry.room.is_private ? " · private" : ""} · ${roomId}` : roomId;
  $("composer").hidden = false;
  renderRooms();
  if (!state.messages.has(roomId)) {
    const page = await state.client.getHistory(roomId, { limit: 50 });
    state.hasOlder.set(roomId, page.has_more);
    addMessages(roomId, page.messages);
  }
  renderMessages();
  renderTyping();
  await loadMembers(roomId);
  markRead(roomId);
  $("composer").elements.content.focus();
}

async function loadMembers(roomId) {
  const { participants } = await state.client.joinRoom(roomId);
  state.members.set(roomId, participants);
  const { users } = await state.client.getPresence(participants.map((p) => p.user_id));
  for (const u of users) state.presence.set(u.user_id, u.status);
  renderMembers();
}

function renderMembers() {
  const members = state.members.get(state.current) ?? [];
  $("members").replaceChildren(
    ...members.map((p) =>
      el("li", { "data-user": p.user_id }, el("span", { class: `dot ${state.presence.get(p.user_id) === "online" ? "online" : ""}` }), el("span", { text: p.display_name ?? p.user_id })),
    ),
  );
}

let reading = null;
function markRead(roomId) {
  const entry = state.rooms.get(roomId);
  if (entry) {
    entry.unread = entry.mentions = 0;
    entry.capped = false;
  }
  renderRooms();
  clearTimeout(reading);
  reading = setTimeout(async () => {
    try {
      setUnread(await state.client.markRead(roomId));
      renderRooms();
    } catch (error) {
      show(error);
    }
  }, 150);
}

// ---- messages ----

function addMessages(roomId, messages) {
  if (!state.messages.has(roomId)) state.messages.set(roomId, new Map());
  const map = state.messages.get(roomId);
  for (const m of messages) map.set(m.id, m);
  if (roomId === state.current) renderMessages();
}

function updateMessage(roomId, messageId, change) {
  const map = state.messages.get(roomId);
  const message = map?.get(messageId);
  if (!message) return;
  map.set(messageId, change(message));
  if (roomId === state.current) renderMessages();
  if (state.thread) openThread(state.thread);
}

function myRole() {
  return state.rooms.get(state.current)?.role ?? "member";
}

function messageItem(m, inThread = false) {
  if (m.message_type === "system") return el("li", { class: "message system", text: m.content });
  const mine = m.sender_id === state.me.user_id;
  const deleted = Boolean(m.deleted_at);
  const canDelete = !deleted && (mine || myRole() === "admin" || myRole() === "moderator");
  const reactions = el(
    "div",
    { class: "reactions" },
    ...m.reactions.map((r) =>
      el("button", {
        class: r.users.includes(state.me.user_id) ? "mine" : "",
        text: `${r.emoji} ${r.count}`,
        title: r.users.join(", "),
        onclick: () => react(m, r.emoji),
      }),
    ),
  );
  const readers = [...(state.readUpTo.get(m.room_id) ?? new Map())].filter(([user, seq]) => user !== state.me.user_id && seq >= m.seq).map(([user]) => user);
  return el(
    "li",
    { class: `message ${deleted ? "deleted" : ""}`, "data-id": m.id, "data-testid": "message" },
    el(
      "div",
      { class: "meta" },
      el("span", { class: "author", text: m.sender_name ?? m.sender_id }),
      el("time", { text: new Date(m.created_at).toLocaleTimeString() }),
      m.edited_at && !deleted ? el("span", { text: "(edited)" }) : null,
      mine && !deleted ? el("span", { class: "seen", text: readers.length ? `✓✓ seen by ${readers.join(", ")}` : "✓" }) : null,
    ),
    el("div", { class: "content", text: deleted ? "message deleted" : m.content }),
    ...m.attachments.map((a) => el("a", { href: /^https?:/.test(a.url) ? a.url : "#", target: "_blank", rel: "noopener", text: `📎 ${a.name}` })),
    reactions,
    !inThread && m.reply_count > 0 ? el("button", { class: "thread-link", text: `${m.reply_count} repl${m.reply_count === 1 ? "y" : "ies"}`, onclick: () => openThread(m.id) }) : null,
    deleted
      ? null
      : el(
          "div",
          { class: "actions" },
          ...EMOJI.map((e) => el("button", { text: e, title: `React ${e}`, onclick: () => react(m, e) })),
          inThread ? null : el("button", { text: "Reply", onclick: () => openThread(m.id) }),
          mine ? el("button", { text: "Edit", onclick: () => edit(m) }) : null,
          mine ? el("button", { text: "Info", onclick: () => info(m) }) : null,
          canDelete ? el("button", { text: "Delete", onclick: () => remove(m) }) : null,
        ),
  );
}

function renderMessages() {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const messages = [...(state.messages.get(state.current)?.values() ?? [])].filter((m) => !m.reply_to).sort((a, b) => a.seq - b.seq);
  list.replaceChildren(...messages.map((m) => messageItem(m)));
  $("older").hidden = !state.hasOlder.get(state.current);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

$("older").addEventListener("click", async () => {
  const room = state.current;
  const oldest = Math.min(...[...state.messages.get(room).values()].map((m) => m.seq));
  const page = await state.client.getHistory(room, { before: String(oldest), limit: 50 });
  state.hasOlder.set(room, page.has_more);
  addMessages(room, page.messages);
});

async function react(message, emoji) {
  const mine = message.reactions.find((r) => r.emoji === emoji)?.users.includes(state.me.user_id);
  try {
    const frame = mine ? await state.client.removeReaction(message.id, emoji) : await state.client.addReaction(message.id, emoji);
    updateMessage(message.room_id, message.id, (m) => ({ ...m, reactions: frame.reactions }));
  } catch (error) {
    show(error);
  }
}

async function edit(message) {
  const content = prompt("Edit message", message.content);
  if (content === null || content === message.content) return;
  try {
    const { message: edited } = await state.client.editMessage(message.id, content);
    addMessages(edited.room_id, [edited]);
  } catch (error) {
    show(error);
  }
}

async function remove(message) {
  if (!confirm("Delete this message?")) return;
  try {
    const frame = await state.client.deleteMessage(message.id);
    updateMessage(frame.room_id, frame.message_id, (m) => ({ ...m, deleted_at: frame.deleted_at, content: "" }));
  } catch (error) {
    show(error);
  }
}

async function info(message) {
  try {
    const { delivered, read } = await state.client.getReceipts(message.id);
    $("thread").hidden = false;
    const names = (list) => list.map((r) => r.user_id).join(", ") || "nobody yet";
    $("details").replaceChildren(el("p", { text: `Delivered to: ${names(delivered)}` }), el("p", { text: `Read by: ${names(read)}` }));
  } catch (error) {
    show(error);
  }
}

// ---- threads ----

async function openThread(messageId) {
  state.thread = messageId;
  $("thread").hidden = false;
  $("details").replaceChildren();
  const { parent, replies } = await state.client.getThread(messageId, { limit: 100 });
  $("thread-messages").replaceChildren(messageItem(parent, true), ...replies.map((m) => messageItem(m, true)));
}

$("close-thread").addEventListener("click", () => {
  state.thread = null;
  $("thread").hidden = true;
});

$("thread-composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.content;
  const parent = state.messages.get(state.current)?.get(state.thread);
  if (!input.value.trim() || !parent) return;
  try {
    await state.client.sendMessage(parent.room_id, input.value, { reply_to: parent.id });
    input.value = "";
    updateMessage(parent.room_id, parent.id, (m) => ({ ...m, reply_count: m.reply_count + 1 }));
    await openThread(parent.id);
  } catch (error) {
    show(error);
  }
});

// ---- composing ----

let typingTimer = null;
$("composer").elements.content.addEventListener("input", () => {
  if (!state.current) return;
  if (!typingTimer) state.client.typingStart(state.current);
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
});

function stopTyping() {
  if (typingTimer && state.current) state.client.typingStop(state.current);
  clearTimeout(typingTimer);
  typingTimer = null;
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.content;
  const content = input.value;
  if (!content.trim() || !state.current) return;
  input.value = "";
  stopTyping();
  try {
    const { message } = await state.client.sendMessage(state.current, content);
    addMessages(message.room_id, [message]);
  } catch (error) {
    input.value = content;
    show(error);
  }
});

function clearTyping(roomId, userId) {
  state.typing.get(roomId)?.delete(userId);
  renderTyping();
}

function renderTyping() {
  const names = [...(state.typing.get(state.current)?.values() ?? [])];
  $("typing").textContent = names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
}

$("create-room").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const participants = String(form.get("participants") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  try {
    const { room } = await state.client.createRoom({
      name: String(form.get("name") ?? "") || undefined,
      room_type: String(form.get("room_type")),
      participants,
      is_private: form.get("is_private") === "on",
    });
    event.target.reset();
    await refreshRooms();
    await openRoom(room.id);
  } catch (error) {
    show(error);
  }
});

$("join-room").addEventListener("submit", async (event) => {
  event.preventDefault();
  const roomId = String(new FormData(event.target).get("room_id")).trim();
  try {
    await state.client.joinRoom(roomId);
    await refreshRooms();
    await openRoom(roomId);
  } catch (error) {
    show(error);
  }
});

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.current) markRead(state.current);
});
