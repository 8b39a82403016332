// The web chat page. Plain DOM on top of the client library; every piece of user text is set
// with textContent, never parsed as HTML.
import { ChatClient, ChatError } from "/lib/index.js";

const $ = (id) => document.getElementById(id);
const EMOJI = ["👍", "❤️", "😂", "🎉", "😮"];

const state = {
  client: null,
  me: null,
  current: null,
  presence: new Map(), // user id -> "online" | "offline"
  thread: null,
};
const SIGN_IN = "chat:sign-in";

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

// Renders a list's items (each with a data-key), keeping the elements that did not change, so
// focus and its ring stay where they are. Focus in a replaced item moves to the same control
// (data-control) of its new version, else a keyboard user would be thrown out of the list.
function replaceList(list, items) {
  if (list.dataset.roving !== undefined) rove(list, items);
  const old = new Map([...list.children].map((n) => [n.dataset.key, n]));
  const next = items.map((n) => (old.get(n.dataset.key)?.isEqualNode(n) ? old.get(n.dataset.key) : n));
  const active = document.activeElement;
  const replaced = list.contains(active) && !next.includes(active.closest("[data-key]")) ? active.closest("[data-key]") : null;
  const keep = new Set(next);
  for (const node of [...list.children]) if (!keep.has(node)) node.remove();
  let at = list.firstElementChild;
  for (const node of next) {
    if (node === at) at = at.nextElementSibling;
    else list.insertBefore(node, at);
  }
  if (!replaced) return;
  const again = next.find((n) => n.dataset.key === replaced.dataset.key);
  const control = active.dataset.control && again?.querySelector(`[data-control="${CSS.escape(active.dataset.control)}"]`);
  (control || again)?.focus({ preventScroll: true });
}

// A message list is one stop in the tab order: the message last focused (else the newest), with
// its controls; the arrow keys, Home and End move between messages.
function rove(list, items = [...list.children]) {
  const current = items.find((n) => n.dataset.key === list.dataset.roving) ?? items.at(-1);
  for (const item of items) {
    item.tabIndex = item === current ? 0 : -1;
    for (const control of item.querySelectorAll("button, a")) control.tabIndex = item.tabIndex;
  }
}

for (const list of [$("messages"), $("thread-messages")]) {
  list.dataset.roving = "";
  list.addEventListener("focusin", (event) => {
    const item = event.target.closest("[data-key]");
    item?.scrollIntoView({ block: "nearest" }); // wholly: on a phone its actions appear under it
    if (!item || item.dataset.key === list.dataset.roving) return;
    list.dataset.roving = item.dataset.key;
    rove(list);
  });
  list.addEventListener("keydown", (event) => {
    const item = event.target.closest("[data-key]");
    const next = { ArrowUp: item?.previousElementSibling, ArrowDown: item?.nextElementSibling, Home: list.firstElementChild, End: list.lastElementChild }[event.key];
    if (!item || !next) return;
    event.preventDefault();
    next.focus();
  });
}

function show(error) {
  console.error(error);
  const banner = $("banner");
  banner.hidden = false;
  banner.replaceChildren(error instanceof ChatError ? `${error.code}: ${error.message}` : String(error));
  setTimeout(() => updateBanner(), 4000);
}

// Reconnecting or disconnected: say so, with a way to try now instead of waiting.
function updateBanner() {
  const banner = $("banner");
  const connection = state.client?.state;
  banner.hidden = connection === "open";
  const text = connection === "closed" ? "Disconnected" : connection === "open" ? "" : "Reconnecting…";
  banner.replaceChildren(text, connection === "open" ? "" : el("button", { text: "Reconnect now", "data-testid": "reconnect", onclick: () => state.client.reconnect() }));
  $("my-dot").className = `dot ${connection === "open" ? "online" : ""}`;
}

// ---- sign in ----

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  await signIn({ user_id: form.get("user"), tenant_id: form.get("tenant"), name: form.get("name") });
});

// A development token for each connection (the token function): one that expired is replaced.
function tokens(identity) {
  return async () => {
    const response = await fetch("/api/v1/dev/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(identity),
    });
    if (!response.ok) throw new Error(`token refused (${response.status})`);
    return (await response.json()).token;
  };
}

async function signIn(identity) {
  $("login-error").textContent = "";
  try {
    const token = tokens(identity);
    await token(); // a refused sign-in shows here, before anything else
    localStorage.setItem(SIGN_IN, JSON.stringify(identity));
    await start(token);
  } catch (error) {
    $("login-error").textContent = String(error.message ?? error);
  }
}

async function start(token) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // Sends on their way are kept in localStorage: after a reload they go again, stored once.
  const client = new ChatClient({ url: `${scheme}://${location.host}/api/v1/ws/chat`, token, storage: localStorage });
  state.client = client;
  wire(client);
  const hello = await client.connect();
  state.me = hello;
  $("login").hidden = true;
  $("app").hidden = false;
  layout();
  $("me").textContent = hello.display_name;
  $("tenant").textContent = hello.tenant_id;
  document.title = `Chat — ${hello.display_name}`;
  renderRooms();
}

// ---- events ----

function wire(client) {
  client.on("state", updateBanner);
  client.on("failed", show);
  client.on("room", (room) => changed(room.id));
  client.on("synced", () => {
    renderRooms();
    if (state.current) markRead(state.current);
  });
  client.on("room_removed", (room) => {
    if (room.id === state.current) closeRoom();
    renderRooms();
  });
  client.on("new_message", ({ message, live }) => {
    if (message.room_id === state.current && visible()) markRead(message.room_id);
    if (state.thread && message.reply_to === state.thread) loadThread().catch(show);
    if (live && message.sender_id !== state.me?.user_id) announce(message);
  });
  client.on("presence", ({ user_id, status }) => {
    state.presence.set(user_id, status);
    renderMembers();
  });
  for (const type of ["room_created", "added_to_room", "room_updated", "user_joined", "user_left", "user_removed", "role_changed", "user_banned"]) {
    client.on(type, (frame) => {
      if ((frame.room?.id ?? frame.room_id) === state.current) loadMembers(state.current).catch(show);
    });
  }
  client.on("announcement", ({ content, from }) => show(`📣 ${from}: ${content}`));
}

// Room state changes come in bursts (a catch-up): render once per frame.
const dirty = new Set();
function changed(roomId) {
  if (dirty.size === 0) requestAnimationFrame(render);
  dirty.add(roomId);
}

function render() {
  renderRooms();
  if (dirty.has(state.current)) {
    renderMessages();
    renderTyping();
    renderMembers();
  }
  dirty.clear();
}

const visible = () => document.visibilityState === "visible";

function announce(message) {
  const where = message.room_id === state.current ? "" : ` in ${state.client.room(message.room_id).room?.name ?? "another room"}`;
  $("announcer").textContent = `${message.sender_name ?? message.sender_id}${where}: ${message.content}`;
}

// Which screens show (one at a time on a phone: app.css).
function layout() {
  $("app").classList.toggle("in-room", state.current !== null);
  $("app").classList.toggle("in-pane", !$("pane").hidden);
}

// ---- rooms ----

function renderRooms() {
  if (!state.client) return;
  replaceList(
    $("rooms"),
    state.client.rooms.filter((r) => r.room).map(({ room, unread, mentions, capped }) => {
      const count = capped ? `${unread}+` : String(unread);
      const badge = unread > 0 ? el("span", { class: `badge ${mentions > 0 ? "mention" : ""}`, text: count, "data-testid": "badge" }) : null;
      const said = unread > 0 ? el("span", { class: "sr-only", text: mentions > 0 ? " unread, you were mentioned" : " unread" }) : null;
      return el(
        "li",
        { "data-key": room.id },
        el(
          "button",
          { "data-control": "open", "aria-current": room.id === state.current ? "true" : null, onclick: () => openRoom(room.id) },
          el("span", { text: room.room_type === "direct" ? "@" : "#", class: "kind", "aria-hidden": "true" }),
          el("span", { text: room.name, "data-testid": "room-name" }),
          badge,
          said,
        ),
      );
    }),
  );
}

async function openRoom(roomId) {
  if (state.current) state.client.room(state.current).active = false;
  state.current = roomId;
  closePane();
  $("messages").dataset.roving = ""; // the newest message is the one in the tab order
  pinned = true;
  const room = state.client.room(roomId);
  room.active = visible();
  $("room-name").textContent = room.room?.name ?? roomId;
  $("room-meta").textContent = room.room ? `${room.room.room_type}${room.room.is_private ? " · private" : ""} · ${roomId}` : roomId;
  $("composer").hidden = false;
  layout();
  renderRooms();
  renderMessages();
  $("composer").elements.content.focus(); // type while the room loads
  try {
    // The newest page, also when live messages arrived before the room was opened.
    await room.load();
    renderMessages();
    renderTyping();
    await loadMembers(roomId);
    markRead(roomId);
  } catch (error) {
    show(error);
  }
}

function closeRoom() {
  state.current = null;
  closePane();
  layout();
  $("room-name").textContent = "No room open";
  $("room-meta").textContent = "";
  $("composer").hidden = true;
  $("messages").replaceChildren();
  $("members").replaceChildren();
}

// On a phone, back to the room list (the button is not shown on wider screens).
$("back").addEventListener("click", () => {
  const roomId = state.current;
  state.client.room(roomId).active = false;
  closeRoom();
  renderRooms();
  $("rooms").querySelector(`[data-key="${CSS.escape(roomId)}"] button`)?.focus();
});

async function loadMembers(roomId) {
  const { participants } = await state.client.joinRoom(roomId);
  const { users } = await state.client.getPresence(participants.map((p) => p.user_id));
  for (const u of users) state.presence.set(u.user_id, u.status);
  renderMembers();
}

function renderMembers() {
  const members = (state.current && state.client.room(state.current).members) || [];
  $("members").replaceChildren(
    ...members.map((p) =>
      el("li", { "data-user": p.user_id }, el("span", { class: `dot ${state.presence.get(p.user_id) === "online" ? "online" : ""}` }), el("span", { text: p.display_name ?? p.user_id })),
    ),
  );
}

let reading = null;
function markRead(roomId) {
  clearTimeout(reading);
  reading = setTimeout(() => state.client.room(roomId).markRead().catch(show), 150);
}

function myRole() {
  return state.client.room(state.current).role ?? "member";
}

function messageItem(m, inThread = false) {
  if (m.message_type === "system") return el("li", { class: "message system", "data-key": m.id, text: m.content });
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
        "aria-pressed": String(r.users.includes(state.me.user_id)),
        "data-control": `reaction ${r.emoji}`,
        onclick: () => react(m, r.emoji),
      }),
    ),
  );
  const readers = state.client.room(m.room_id).readers(m);
  return el(
    "li",
    { class: `message ${deleted ? "deleted" : ""}`, "data-id": m.id, "data-key": m.id, "data-testid": "message" },
    el(
      "div",
      { class: "meta" },
      el("span", { class: "author", text: m.sender_name ?? m.sender_id }),
      el("time", { datetime: m.created_at, text: new Date(m.created_at).toLocaleTimeString() }),
      m.edited_at && !deleted ? el("span", { text: "(edited)" }) : null,
      mine && !deleted ? el("span", { class: "seen", text: readers.length ? `✓✓ seen by ${readers.join(", ")}` : "✓" }) : null,
    ),
    el("div", { class: "content", text: deleted ? "message deleted" : m.content }),
    ...m.attachments.map((a) => el("a", { href: /^https?:/.test(a.url) ? a.url : "#", target: "_blank", rel: "noopener", text: `📎 ${a.name}` })),
    reactions,
    !inThread && m.reply_count > 0
      ? el("button", { class: "thread-link", text: `${m.reply_count} repl${m.reply_count === 1 ? "y" : "ies"}`, "data-control": "thread", onclick: () => openThread(m.id) })
      : null,
    deleted
      ? null
      : el(
          "div",
          { class: "actions" },
          ...EMOJI.map((e) => el("button", { text: e, title: `React ${e}`, "aria-label": `React ${e}`, "data-control": `react ${e}`, onclick: () => react(m, e) })),
          inThread ? null : el("button", { text: "Reply", "data-control": "reply", onclick: () => openThread(m.id) }),
          mine ? el("button", { text: "Edit", "data-control": "edit", onclick: () => edit(m) }) : null,
          mine ? el("button", { text: "Info", "data-control": "info", onclick: () => info(m) }) : null,
          canDelete ? el("button", { text: "Delete", "data-control": "delete", onclick: () => remove(m) }) : null,
        ),
  );
}

// A message of mine not stored yet: "sending…", or failed with a way to send it again.
function localItem(local) {
  const room = state.client.room(local.room_id);
  return el(
    "li",
    { class: `message ${local.status}`, "data-key": local.client_msg_id, "data-testid": "message", "data-status": local.status },
    el(
      "div",
      { class: "meta" },
      el("span", { class: "author", text: state.me.display_name }),
      el("span", { class: "status", text: local.status === "pending" ? "sending…" : `not sent (${local.error?.code ?? "error"})` }),
      local.status === "failed" ? el("button", { text: "Retry", "data-control": "retry", onclick: () => room.retry(local.client_msg_id).catch(show) }) : null,
    ),
    el("div", { class: "content", text: local.content }),
  );
}

// The list stays at its newest message while it is there (as a room opens, too): through
// re-renders and when the list changes size (the header wraps as members load, a phone's keyboard
// opens). Scrolled up, what is read stays put, also as older messages load above it.
let pinned = true;
$("messages").addEventListener("scroll", ({ target: list }) => {
  pinned = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
});
new ResizeObserver(([{ target: list }]) => {
  if (pinned) list.scrollTop = list.scrollHeight;
}).observe($("messages"));

function renderMessages() {
  if (!state.current) return;
  const room = state.client.room(state.current);
  const list = $("messages");
  const fromEnd = list.scrollHeight - list.scrollTop;
  const local = [...room.pending.values()].filter((p) => !p.options.reply_to);
  replaceList(list, [...room.timeline.map((m) => messageItem(m)), ...local.map(localItem)]);
  $("older").hidden = !room.loaded || !room.hasOlder;
  list.scrollTop = pinned ? list.scrollHeight : list.scrollHeight - fromEnd;
}

$("older").addEventListener("click", () => state.client.room(state.current).loadOlder().catch(show));

async function react(message, emoji) {
  const mine = message.reactions.find((r) => r.emoji === emoji)?.users.includes(state.me.user_id);
  try {
    await (mine ? state.client.removeReaction(message.id, emoji) : state.client.addReaction(message.id, emoji));
  } catch (error) {
    show(error);
  }
}

async function edit(message) {
  const content = prompt("Edit message", message.content);
  if (content === null || content === message.content) return;
  try {
    await state.client.editMessage(message.id, content);
  } catch (error) {
    show(error);
  }
}

async function remove(message) {
  if (!confirm("Delete this message?")) return;
  try {
    await state.client.deleteMessage(message.id);
  } catch (error) {
    show(error);
  }
}

// ---- the side pane: a thread, or who got and read a message ----

function openPane(title, thread) {
  state.thread = thread;
  $("pane-title").textContent = title;
  $("thread-messages").hidden = $("thread-composer").hidden = thread === null;
  $("thread-messages").replaceChildren();
  $("thread-messages").dataset.roving = "";
  $("details").replaceChildren();
  $("pane").hidden = false;
  layout();
}

// Focus in the pane goes back to the message it was opened from (the one in the tab order).
function closePane() {
  if ($("pane").hidden) return;
  const inPane = $("pane").contains(document.activeElement);
  state.thread = null;
  $("pane").hidden = true;
  layout();
  if (inPane) $("messages").querySelector("[data-key][tabindex='0']")?.focus();
}

async function info(message) {
  try {
    const { delivered, read } = await state.client.getReceipts(message.id);
    openPane("Message info", null);
    const names = (list) => list.map((r) => r.user_id).join(", ") || "nobody yet";
    $("details").replaceChildren(el("p", { text: `Delivered to: ${names(delivered)}` }), el("p", { text: `Read by: ${names(read)}` }));
    $("close-pane").focus();
  } catch (error) {
    show(error);
  }
}

async function openThread(messageId) {
  openPane("Thread", messageId);
  $("thread-composer").elements.content.focus();
  await loadThread().catch(show);
}

async function loadThread() {
  const { parent, replies } = await state.client.getThread(state.thread, { limit: 100 });
  if (parent.id === state.thread) replaceList($("thread-messages"), [messageItem(parent, true), ...replies.map((m) => messageItem(m, true))]);
}

$("close-pane").addEventListener("click", closePane);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closePane();
});

$("thread-composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.content;
  const parent = state.client.room(state.current).get(state.thread);
  if (!input.value.trim() || !parent) return;
  try {
    await state.client.sendMessage(parent.room_id, input.value, { reply_to: parent.id });
    input.value = "";
    state.client.room(parent.room_id).update(parent.id, (m) => ({ ...m, reply_count: m.reply_count + 1 }));
    await loadThread();
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
  // Pending, then stored or failed (with Retry): the room's state shows which.
  state.client.sendMessage(state.current, content).catch(() => {});
});

function renderTyping() {
  const names = state.current ? [...state.client.room(state.current).typing.values()] : [];
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
    await openRoom(roomId);
  } catch (error) {
    show(error);
  }
});

document.addEventListener("visibilitychange", () => {
  if (!state.current) return;
  state.client.room(state.current).active = visible();
  if (visible()) markRead(state.current);
});

// Signed in before this reload: again, and what was on its way goes out.
const remembered = localStorage.getItem(SIGN_IN);
if (remembered) signIn(JSON.parse(remembered));
