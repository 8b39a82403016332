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
  threadData: null, // the open thread: { parent, replies }
  view: null, // what the side pane shows: thread | info | pins | reports | report
  pins: [], // the open room's pins, newest first
  reports: [], // the open room's open reports (moderators and admins)
  blocked: new Map(), // user id -> blocked_at, as list_blocked and user_blocked tell
  blockedKnown: false, // until list_blocked answers, messages' sender_blocked says
  revealed: new Set(), // messages from blocked users shown anyway ("Show")
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
  // Sends on their way are kept in localStorage: after a reload they go again, stored once. A
  // rate-limited send (slow mode) comes back to the composer with the wait shown, not resent.
  const client = new ChatClient({ url: `${scheme}://${location.host}/api/v1/ws/chat`, token, storage: localStorage, retryRateLimited: false });
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
  loadBlocked().catch(show);
}

// ---- events ----

function wire(client) {
  client.on("state", updateBanner);
  client.on("failed", show);
  client.on("room", (room) => changed(room.id));
  client.on("synced", () => {
    renderRooms();
    if (state.current) markRead(state.current);
    // What changed while away (blocks on another device, pins, reports) came as events then lost.
    if (state.me) loadBlocked().catch(show);
    if (state.current) loadModeration(state.current);
  });
  client.on("room_removed", (room) => {
    if (room.id === state.current) closeRoom();
    renderRooms();
  });
  client.on("new_message", ({ message, live }) => {
    if (message.room_id === state.current && visible()) markRead(message.room_id);
    if (state.thread && message.reply_to === state.thread) loadThread().catch(show);
    if (live && message.sender_id !== state.me?.user_id && !isBlocked(message)) announce(message);
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
  wireModeration(client);
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
    renderRoomTools(); // frozen, slow mode and the role come with the room's state
    renderComposer();
    renderThread();
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
  state.pins = [];
  state.reports = [];
  layout();
  renderRooms();
  renderMessages();
  renderRoomTools();
  renderComposer();
  $("composer").elements.content.focus(); // type while the room loads
  try {
    // The newest page, also when live messages arrived before the room was opened.
    await room.load();
    renderMessages();
    renderTyping();
    await loadMembers(roomId);
    markRead(roomId);
    loadModeration(roomId);
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
  state.pins = [];
  state.reports = [];
  renderRoomTools();
  renderComposer();
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

// A member you blocked says so, with the way back (blocking is on their messages' actions).
function renderMembers() {
  const members = (state.current && state.client.room(state.current).members) || [];
  $("members").replaceChildren(
    ...members.map((p) => {
      const name = p.display_name ?? p.user_id;
      const blocked = state.blocked.has(p.user_id);
      return el(
        "li",
        { "data-user": p.user_id },
        el("span", { class: `dot ${state.presence.get(p.user_id) === "online" ? "online" : ""}` }),
        el("span", { text: name }),
        blocked ? el("span", { class: "tag", text: "blocked" }) : null,
        blocked ? el("button", { class: "small", text: "Unblock", "aria-label": `Unblock ${name}`, onclick: () => block(p.user_id, false) }) : null,
      );
    }),
  );
}

/** A user's name as the open room knows it. */
function nameOf(userId) {
  const member = state.current && state.client.room(state.current).members?.find((p) => p.user_id === userId);
  return member?.display_name ?? (userId === state.me?.user_id ? state.me.display_name : userId);
}

let reading = null;
function markRead(roomId) {
  clearTimeout(reading);
  reading = setTimeout(() => state.client.room(roomId).markRead().catch(show), 150);
}

function myRole() {
  return state.client.room(state.current).role ?? "member";
}

const isModerator = (role = myRole()) => role === "admin" || role === "moderator";
const isPinned = (messageId) => state.pins.some((p) => p.message.id === messageId);
/** Whether the open room takes nothing from this user: frozen, and they are not an admin. */
function frozenForMe() {
  return Boolean(state.current && state.client.room(state.current).room?.frozen) && myRole() !== "admin";
}
/** From someone this user blocked: the list once it is known (blocks and unblocks since the
 * message came included), the message's own flag before. */
function isBlocked(m) {
  if (m.sender_id === state.me?.user_id) return false;
  return state.blockedKnown ? state.blocked.has(m.sender_id) : Boolean(m.sender_blocked);
}

function messageItem(m, inThread = false) {
  if (m.message_type === "system") return el("li", { class: "message system", "data-key": m.id, text: m.content });
  const mine = m.sender_id === state.me.user_id;
  const deleted = Boolean(m.deleted_at);
  const name = m.sender_name ?? m.sender_id;
  const blocked = !deleted && isBlocked(m);
  if (blocked && !state.revealed.has(m.id)) {
    // Folded: what it says stays out of the page until asked for.
    return el(
      "li",
      { class: "message folded", "data-id": m.id, "data-key": m.id, "data-testid": "message", "data-blocked": "" },
      el("div", { class: "content", text: "Message from a blocked user" }),
      el("button", { class: "small", text: "Show", "aria-label": "Show message from a blocked user", "data-control": "show", onclick: () => reveal(m.id, true) }),
    );
  }
  const locked = frozenForMe();
  const mod = isModerator();
  const canDelete = !deleted && (mine || mod);
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
        disabled: locked,
        onclick: () => react(m, r.emoji),
      }),
    ),
  );
  const readers = state.client.room(m.room_id).readers(m);
  const pinned = !deleted && isPinned(m.id);
  return el(
    "li",
    { class: `message ${deleted ? "deleted" : ""}`, "data-id": m.id, "data-key": m.id, "data-testid": "message", "data-pinned": pinned ? "" : null },
    el(
      "div",
      { class: "meta" },
      el("span", { class: "author", text: name }),
      el("time", { datetime: m.created_at, text: new Date(m.created_at).toLocaleTimeString() }),
      m.edited_at && !deleted ? el("span", { text: "(edited)" }) : null,
      pinned ? el("span", { class: "pin-mark", text: "📌 pinned" }) : null,
      blocked ? el("span", { text: "(blocked user)" }) : null,
      blocked ? el("button", { class: "small", text: "Hide", "aria-label": "Hide message from a blocked user", "data-control": "hide", onclick: () => reveal(m.id, false) }) : null,
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
          ...(locked ? [] : EMOJI.map((e) => el("button", { text: e, title: `React ${e}`, "aria-label": `React ${e}`, "data-control": `react ${e}`, onclick: () => react(m, e) }))),
          inThread ? null : el("button", { text: "Reply", "data-control": "reply", onclick: () => openThread(m.id) }),
          mine && !locked ? el("button", { text: "Edit", "data-control": "edit", onclick: () => edit(m) }) : null,
          mine ? el("button", { text: "Info", "data-control": "info", onclick: () => info(m) }) : null,
          mod ? el("button", { text: pinned ? "Unpin" : "Pin", "data-control": "pin", onclick: () => pin(m, !pinned) }) : null,
          mine ? null : el("button", { text: "Report", "aria-label": `Report ${name}’s message`, "data-control": "report", onclick: () => reportForm(m) }),
          mine ? null : el("button", { text: blocked ? "Unblock" : "Block", "aria-label": `${blocked ? "Unblock" : "Block"} ${name}`, "data-control": "block", onclick: () => block(m.sender_id, !blocked) }),
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

// ---- the side pane: a thread, who got and read a message, pins, reports, a report's form ----

function openPane(title, thread, view = thread === null ? "info" : "thread") {
  state.thread = thread;
  state.threadData = null;
  state.view = view;
  $("pane-title").textContent = title;
  $("thread-messages").hidden = $("thread-composer").hidden = $("thread-wait").hidden = thread === null;
  $("thread-messages").replaceChildren();
  $("thread-messages").dataset.roving = "";
  $("details").replaceChildren();
  $("pane").hidden = false;
  layout();
  renderComposer();
}

// Focus in the pane goes back to the message it was opened from (the one in the tab order).
// Pins and reports give it back to their button.
function closePane() {
  if ($("pane").hidden) return;
  const inPane = $("pane").contains(document.activeElement);
  const opener = { pins: $("pins-button"), reports: $("reports-button") }[state.view];
  state.thread = null;
  state.threadData = null;
  state.view = null;
  $("pane").hidden = true;
  layout();
  renderRoomTools();
  if (inPane) (opener && !opener.hidden ? opener : $("messages").querySelector("[data-key][tabindex='0']"))?.focus();
}

/** Renders a list of the pane whose item may go (unpinned, resolved): focus that was in it
 * stays in it, on the next item's button, else on the pane's close button. */
function replacePaneList(list, items) {
  const had = list.contains(document.activeElement);
  replaceList(list, items);
  if (had && !list.contains(document.activeElement)) (list.querySelector("button") ?? $("close-pane")).focus();
}

async function info(message) {
  try {
    const { delivered, read } = await state.client.getReceipts(message.id);
    openPane("Message info", null, "info");
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
  if (parent.id !== state.thread) return;
  state.threadData = { parent, replies };
  renderThread();
}

function renderThread() {
  const { parent, replies } = state.threadData ?? {};
  if (parent) replaceList($("thread-messages"), [messageItem(parent, true), ...replies.map((m) => messageItem(m, true))]);
}

$("close-pane").addEventListener("click", closePane);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closePane();
});

$("thread-composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.elements.content;
  const parent = state.client.room(state.current).get(state.thread);
  if (!input.value.trim() || !parent || waiting(parent.room_id)) return;
  try {
    // The reply stays in its box until stored (and after a refusal, slow mode's among them).
    if (!(await send(parent.room_id, input.value, { reply_to: parent.id }))) return;
    input.value = "";
    state.client.room(parent.room_id).update(parent.id, (m) => ({ ...m, reply_count: m.reply_count + 1 }));
    await loadThread();
  } catch (error) {
    show(error);
  }
});

// ---- moderation: pins, frozen rooms, slow mode, blocking, reports ----

function wireModeration(client) {
  client.on("message_pinned", ({ room_id, pin }) => room_id === state.current && addPin(pin));
  client.on("message_unpinned", ({ room_id, message_id }) => room_id === state.current && removePin(message_id));
  client.on("room_frozen", ({ room_id }) => room_id === state.current && say("The room is frozen"));
  client.on("room_unfrozen", ({ room_id }) => room_id === state.current && say("The room is no longer frozen"));
  client.on("slow_mode_set", ({ room_id, seconds }) => {
    if (seconds === 0 && wait.roomId === room_id) wait.until = 0; // off: nothing to wait for
    if (room_id === state.current) say(seconds ? `Slow mode: ${duration(seconds)}` : "Slow mode is off");
  });
  client.on("user_blocked", ({ user_id, blocked_at }) => blockedChanged(user_id, blocked_at));
  client.on("user_unblocked", ({ user_id }) => blockedChanged(user_id, null));
  client.on("message_reported", ({ report }) => reported(report));
  client.on("report_resolved", ({ report }) => resolved(report));
  client.on("message_deleted", ({ room_id, message_id }) => {
    // Deleting a message closes its reports.
    if (room_id === state.current) setReports((reports) => reports.filter((r) => r.message_id !== message_id));
  });
  client.on("role_changed", ({ room_id, user_id }) => {
    if (room_id === state.current && user_id === state.me?.user_id) loadReports(room_id).catch(show);
  });
}

function say(text) {
  $("announcer").textContent = text;
}

const duration = (s) => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);

// Lists kept live by events (pins, reports, blocks) are loaded while events keep coming: a
// change that arrives while the request is out is applied again to its answer, which may be
// older than the change.
const loading = { pins: new Set(), reports: new Set(), blocked: new Set() };

async function load(kind, fetch) {
  const missed = [];
  loading[kind].add(missed);
  try {
    let list = await fetch();
    for (const change of missed) list = change(list);
    return list;
  } finally {
    loading[kind].delete(missed);
  }
}

/** Changes a live list (`change` takes the list and gives the new one). */
function apply(kind, change) {
  for (const missed of loading[kind]) missed.push(change);
  state[kind] = change(state[kind]);
}

/** The open room's pins, and its open reports for its moderators and admins. */
function loadModeration(roomId) {
  load("pins", async () => (await state.client.listPins(roomId)).pins)
    .then((pins) => {
      if (roomId !== state.current) return;
      state.pins = pins;
      pinsChanged();
    })
    .catch(show);
  loadReports(roomId).catch(show);
}

async function loadReports(roomId) {
  const reports = isModerator(state.client.room(roomId).role)
    ? await load("reports", async () => (await state.client.listReports({ roomId })).reports)
    : [];
  if (roomId !== state.current) return;
  state.reports = reports;
  reportsChanged();
}

// The room's header: its state for everyone (frozen, slow mode, pins), its moderation for
// moderators (reports) and admins (freezing, slow mode).
function renderRoomTools() {
  const room = state.current ? state.client.room(state.current) : null;
  const info = room?.room;
  const admin = room?.role === "admin";
  const mod = Boolean(room) && isModerator(room.role ?? "member");
  const flags = [
    info?.frozen ? el("span", { class: "flag frozen", text: "🧊 Frozen" }) : null,
    info?.slow_mode_seconds > 0 ? el("span", { class: "flag", text: `🐢 Slow mode: ${duration(info.slow_mode_seconds)}` }) : null,
  ].filter(Boolean);
  $("room-flags").replaceChildren(...flags);
  const pins = $("pins-button");
  pins.hidden = state.pins.length === 0;
  pins.textContent = `📌 ${state.pins.length} pinned`;
  pins.setAttribute("aria-expanded", String(state.view === "pins"));
  const reports = $("reports-button");
  reports.hidden = !mod;
  reports.textContent = `Reports (${state.reports.length})`;
  reports.classList.toggle("attention", state.reports.length > 0);
  reports.setAttribute("aria-expanded", String(state.view === "reports"));
  $("freeze").hidden = !admin;
  $("freeze").textContent = info?.frozen ? "Unfreeze room" : "Freeze room";
  $("slow-mode-control").hidden = !admin;
  const select = $("slow-mode");
  const seconds = String(info?.slow_mode_seconds ?? 0);
  // An interval set elsewhere (the API takes any number of seconds) is an option too.
  if (![...select.options].some((o) => o.value === seconds)) select.append(el("option", { value: seconds, text: duration(Number(seconds)) }));
  select.value = seconds;
  $("room-tools").hidden = !room || (flags.length === 0 && pins.hidden && !mod);
}

$("freeze").addEventListener("click", async () => {
  const room = state.client.room(state.current);
  try {
    await (room.room?.frozen ? state.client.unfreezeRoom(room.id) : state.client.freezeRoom(room.id));
  } catch (error) {
    show(error);
  }
});

$("slow-mode").addEventListener("change", async (event) => {
  const room = state.client.room(state.current);
  try {
    await state.client.setSlowMode(room.id, Number(event.target.value));
  } catch (error) {
    show(error);
    renderRoomTools();
  }
});

// ---- pins ----

async function pin(message, on) {
  try {
    if (on) addPin((await state.client.pinMessage(message.id)).pin);
    else {
      await state.client.unpinMessage(message.id);
      removePin(message.id);
    }
  } catch (error) {
    show(error);
  }
}

function addPin(pin) {
  apply("pins", (pins) => [pin, ...pins.filter((p) => p.message.id !== pin.message.id)]);
  pinsChanged();
}

function removePin(messageId) {
  apply("pins", (pins) => pins.filter((p) => p.message.id !== messageId));
  pinsChanged();
}

function pinsChanged() {
  renderRoomTools();
  renderMessages();
  renderThread();
  renderPins();
}

/** Opens the side pane on a list (`view`: its id and test id) drawn by `render`, or closes the
 * pane when it shows that list already. Whether it opened. */
function toggleListPane(view, title, label, render) {
  if (state.view === view) {
    closePane();
    return false;
  }
  openPane(title, null, view);
  $("details").replaceChildren(el("ul", { class: "pane-list", id: view, "aria-label": label, "data-testid": view }));
  render();
  renderRoomTools();
  $("close-pane").focus();
  return true;
}

$("pins-button").addEventListener("click", () => toggleListPane("pins", "Pinned messages", "Pinned messages", renderPins));

// Each pin as its message is now (the room's copy, when it has one: edits show).
function renderPins() {
  const list = $("pins");
  if (state.view !== "pins" || !list) return;
  const room = state.client.room(state.current);
  if (state.pins.length === 0) return replacePaneList(list, [el("li", { class: "empty", "data-key": "none", text: "No pinned messages." })]);
  replacePaneList(
    list,
    state.pins.map(({ message, pinned_by, pinned_at }) => {
      const m = room.get(message.id) ?? message;
      return el(
        "li",
        { "data-key": m.id },
        el("p", { class: "meta" }, el("strong", { text: m.sender_name ?? m.sender_id }), ` · pinned by ${nameOf(pinned_by)} · `, el("time", { datetime: pinned_at, text: new Date(pinned_at).toLocaleString() })),
        el("p", { class: "quote", text: isBlocked(m) ? "Message from a blocked user" : m.content }),
        el(
          "div",
          { class: "buttons" },
          el("button", { text: "Show in chat", "data-control": "jump", onclick: () => jumpTo(m) }),
          isModerator() ? el("button", { text: "Unpin", "data-control": "unpin", onclick: () => pin(m, false) }) : null,
        ),
      );
    }),
  );
}

/** Brings a message into view and focus: a thread's reply in its thread, an older one after
 * loading the pages back to it. */
async function jumpTo(message) {
  if (message.reply_to) return openThread(message.reply_to);
  const room = state.client.room(message.room_id);
  try {
    for (let pages = 0; !room.has(message.id) && room.hasOlder && pages < 20; pages++) await room.loadOlder();
  } catch (error) {
    return show(error);
  }
  if (matchMedia("(max-width: 1000px)").matches) closePane(); // the pane covers the room
  state.revealed.add(message.id);
  renderMessages();
  const item = $("messages").querySelector(`[data-key="${CSS.escape(message.id)}"]`);
  if (!item) return show("That message is no longer in the room's history.");
  item.focus();
  item.scrollIntoView({ block: "center" });
  item.classList.add("highlight");
}

// ---- blocking ----

async function loadBlocked() {
  state.blocked = await load("blocked", async () => new Map((await state.client.listBlocked()).users.map((u) => [u.user_id, u.blocked_at])));
  state.blockedKnown = true;
  blocksChanged();
}

async function block(userId, on) {
  try {
    if (on) blockedChanged(userId, (await state.client.blockUser(userId)).blocked_at);
    else {
      await state.client.unblockUser(userId);
      blockedChanged(userId, null);
    }
    say(`${nameOf(userId)} is ${on ? "blocked: their messages are folded" : "no longer blocked"}`);
  } catch (error) {
    show(error);
  }
}

function blockedChanged(userId, blockedAt) {
  apply("blocked", (blocked) => {
    const next = new Map(blocked);
    if (blockedAt) next.set(userId, blockedAt);
    else next.delete(userId);
    return next;
  });
  blocksChanged();
}

function blocksChanged() {
  if (!state.current) return;
  renderMessages();
  renderThread();
  renderMembers();
  renderPins();
  renderReports();
}

function reveal(messageId, shown) {
  if (shown) state.revealed.add(messageId);
  else state.revealed.delete(messageId);
  renderMessages();
  renderThread();
}

// ---- reports ----

function reportForm(message) {
  openPane("Report message", null, "report");
  const reason = el("textarea", { id: "report-reason", name: "reason", required: true, maxlength: "500", rows: "3" });
  const error = el("p", { class: "error", role: "alert" });
  const form = el(
    "form",
    { class: "report-form", "data-testid": "report-form", onsubmit: (event) => submitReport(event, message, reason, error) },
    el("p", { class: "meta" }, el("strong", { text: message.sender_name ?? message.sender_id }), " wrote:"),
    el("p", { class: "quote", text: message.content }),
    el("label", { for: "report-reason", text: "Why should the room's moderators look at it?" }),
    reason,
    error,
    el("div", { class: "buttons" }, el("button", { type: "submit", text: "Send report" }), el("button", { type: "button", text: "Cancel", onclick: closePane })),
  );
  $("details").replaceChildren(form);
  reason.focus();
}

async function submitReport(event, message, reason, error) {
  event.preventDefault();
  const text = reason.value.trim();
  if (!text) return (error.textContent = "Say what is wrong with it.");
  event.target.querySelector("button[type=submit]").disabled = true;
  try {
    await state.client.reportMessage(message.id, text);
    if (state.view !== "report") return;
    const done = el("p", { class: "confirm", "data-testid": "reported", text: "Thank you: the room's moderators will look at your report." });
    $("details").replaceChildren(done);
    say(done.textContent);
    $("close-pane").focus();
  } catch (failure) {
    event.target.querySelector("button[type=submit]").disabled = false;
    error.textContent = failure instanceof ChatError ? failure.message : String(failure);
  }
}

function reported(report) {
  if (report.room_id !== state.current || !isModerator() || report.status !== "open") return;
  setReports((reports) => [report, ...reports.filter((r) => r.id !== report.id)]);
  say(`${nameOf(report.reporter)} reported a message`);
}

function resolved(report) {
  // A deletion closes every open report of the message.
  const gone = (r) => r.id === report.id || (report.status === "deleted" && r.message_id === report.message_id);
  if (report.room_id === state.current) setReports((reports) => reports.filter((r) => !gone(r)));
}

/** Changes the open room's open reports (`change` takes them and gives the new ones). */
function setReports(change) {
  apply("reports", change);
  reportsChanged();
}

function reportsChanged() {
  renderRoomTools();
  renderReports();
}

$("reports-button").addEventListener("click", () => {
  if (toggleListPane("reports", "Reports", "Open reports", renderReports)) loadReports(state.current).catch(show);
});

function renderReports() {
  const list = $("reports");
  if (state.view !== "reports" || !list) return;
  if (state.reports.length === 0) return replacePaneList(list, [el("li", { class: "empty", "data-key": "none", text: "No open reports." })]);
  replacePaneList(
    list,
    state.reports.map((r) => {
      const m = r.message;
      const author = m ? (m.sender_name ?? m.sender_id) : "a message";
      const content = !m ? "The message is no longer available." : m.deleted_at ? "message deleted" : m.content;
      return el(
        "li",
        { "data-key": r.id, "data-testid": "report" },
        el("p", { class: "meta" }, el("strong", { text: nameOf(r.reporter) }), ` reported ${m ? `${author}’s message` : author} · `, el("time", { datetime: r.created_at, text: new Date(r.created_at).toLocaleString() })),
        el("p", { class: "quote", text: content }),
        el("p", { class: "reason", text: `Reason: ${r.reason}` }),
        el(
          "div",
          { class: "buttons" },
          el("button", { text: "Dismiss", "aria-label": `Dismiss ${nameOf(r.reporter)}’s report`, "data-control": "dismiss", onclick: () => resolveReport(r, "dismiss") }),
          m && !m.deleted_at
            ? el("button", { text: "Delete message", "aria-label": `Delete message reported by ${nameOf(r.reporter)}`, "data-control": "delete", onclick: () => resolveReport(r, "delete_message") })
            : null,
        ),
      );
    }),
  );
}

async function resolveReport(report, action) {
  if (action === "delete_message" && !confirm("Delete this message?")) return;
  try {
    const done = (await state.client.resolveReport(report.id, action)).report;
    if (done.status === "deleted") {
      // The room hears of the deletion (and the unpin), but this connection only gets the reply.
      state.client.room(done.room_id).deleted(done.message_id, done.resolved_at ?? new Date().toISOString(), done.resolved_by ?? state.me.user_id);
      if (done.room_id === state.current) removePin(done.message_id);
    }
    resolved(done);
  } catch (error) {
    show(error);
    loadReports(report.room_id).catch(() => {});
  }
}

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
  if (!content.trim() || !state.current || waiting(state.current)) return;
  input.value = "";
  stopTyping();
  // Pending, then stored or failed (with Retry): the room's state shows which. Refused by slow
  // mode, it comes back to the box (unless something else was typed meanwhile: then it stays
  // in the list as not sent, with Retry).
  send(state.current, content, {}, () => {
    if (input.value) return false;
    input.value = content;
    return true;
  }).catch(() => {});
});

/** Sends a message; a `rate_limited` refusal (slow mode, or too many too fast) starts the wait
 * and resolves with null, the text given back by `giveBack` (which says whether it took it: if
 * not, the message stays as not sent, with Retry). */
async function send(roomId, content, options = {}, giveBack = () => true) {
  const id = crypto.randomUUID();
  try {
    return await state.client.sendMessage(roomId, content, { ...options, client_msg_id: id });
  } catch (error) {
    if (!(error instanceof ChatError) || error.code !== "rate_limited") throw error;
    startWait(roomId, error.retryAfterMs ?? 1000);
    if (giveBack()) {
      state.client.room(roomId).pending.delete(id);
      changed(roomId);
    }
    return null;
  }
}

// ---- slow mode's wait, and what a frozen room allows ----

const wait = { roomId: null, until: 0, timer: null };
const waiting = (roomId) => wait.roomId === roomId && wait.until > Date.now();

function startWait(roomId, ms) {
  clearInterval(wait.timer);
  Object.assign(wait, { roomId, until: Date.now() + ms, timer: setInterval(renderComposer, 1000) });
  renderComposer();
  if (roomId === state.current) $("announcer").textContent = waitText();
}

function waitText() {
  const seconds = Math.ceil((wait.until - Date.now()) / 1000);
  const slow = state.client.room(wait.roomId).room?.slow_mode_seconds > 0;
  return `${slow ? "Slow mode" : "Too many messages"}: you can send again in ${seconds} s. Your message is kept.`;
}

// The composers: off for a non-admin in a frozen room (the notice says why); Send waits out a
// rate limit (the line above it counts down) while the box stays free to type in.
function renderComposer() {
  if (wait.timer && wait.until <= Date.now()) {
    clearInterval(wait.timer);
    wait.timer = null;
  }
  const info = state.current ? state.client.room(state.current).room : null;
  const locked = frozenForMe();
  const held = state.current !== null && waiting(state.current);
  $("room-notice").textContent = !info?.frozen
    ? ""
    : locked
      ? "🧊 This room is frozen: only its admins can post. You can still read everything."
      : "🧊 This room is frozen: only its admins (you among them) can post, edit and react.";
  for (const [form, note, placeholder] of [[$("composer"), $("composer-wait"), "Write a message…"], [$("thread-composer"), $("thread-wait"), "Reply…"]]) {
    const input = form.elements.content;
    input.disabled = locked;
    input.placeholder = locked ? "This room is frozen" : placeholder;
    form.querySelector("button").disabled = locked || held;
    note.textContent = held && !locked ? waitText() : "";
  }
}

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
