// The web page in headless Chromium (Debian's package, driven by playwright-core): two users chat,
// and what a person sees of it on a desktop and on a phone (placement, keyboard, axe-core).
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import axe from "axe-core";
import { chromium } from "playwright-core";
import WebSocket from "ws";

import { ChatClient } from "../dist/index.js";
import { Gateway, Proxy, WAIT_MS, screenshots, tenant, until } from "./harness.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let gateway;
let browser;
before(async () => {
  gateway = await Gateway.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});
after(async () => {
  await browser?.close();
  await gateway?.stop();
});

const DESKTOP = { name: "desktop", context: { viewport: { width: 1280, height: 800 } } };
const PHONE = { name: "phone", context: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } };

async function signIn(name, user, t, { origin = gateway.http, device = DESKTOP } = {}) {
  const context = await browser.newContext(device.context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (error) => console.error(`${user}: page error`, error));
  await page.goto(origin);
  await page.fill("input[name=name]", name);
  await page.fill("input[name=user]", user);
  await page.fill("input[name=tenant]", t);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#app:not([hidden])");
  return page;
}

const room = (page, name) => page.locator("#rooms li", { hasText: name });

test("two people chat in the browser: messages, typing, unread badges, recovery after a restart", async () => {
  const t = tenant();
  const alice = await signIn("Alice", "alice", t);
  const bob = await signIn("Bob", "bob", t);

  await alice.click(".new-room summary");
  await alice.fill("#create-room input[name=name]", "Design review");
  await alice.fill("#create-room input[name=participants]", "bob");
  await alice.click("#create-room button[type=submit]");
  await alice.waitForSelector("#room-name:text('Design review')");

  await room(bob, "Design review").click();
  await bob.waitForSelector("#room-name:text('Design review')");

  await alice.type("[data-testid=composer]", "Hello");
  await bob.waitForSelector("[data-testid=typing]:has-text('Alice is typing')");
  await alice.press("[data-testid=composer]", "Enter");
  await bob.waitForSelector("[data-testid=message]:has-text('Hello')");
  await bob.waitForSelector("[data-testid=typing]:text-is('')");

  // Text is shown as text, never as markup.
  await bob.fill("[data-testid=composer]", "<b>not bold</b>");
  await bob.press("[data-testid=composer]", "Enter");
  await alice.waitForSelector("[data-testid=message] .content:text-is('<b>not bold</b>')");
  assert.equal(await alice.locator("[data-testid=messages] b").count(), 0);

  // Bob looks at another room: Alice's next messages count as unread there, one less when she
  // deletes one (new_message carries no counts: the page counts, and asks after a deletion).
  await bob.click(".new-room summary");
  await bob.fill("#create-room input[name=name]", "Bob's notes");
  await bob.click("#create-room button[type=submit]");
  await bob.waitForSelector("#room-name:text(\"Bob's notes\")");
  const badge = (text) => room(bob, "Design review").locator(`[data-testid=badge]:text-is('${text}')`).waitFor();
  await alice.fill("[data-testid=composer]", "Are you there?");
  await alice.press("[data-testid=composer]", "Enter");
  await badge("1");
  await alice.fill("[data-testid=composer]", "Hello?");
  await alice.press("[data-testid=composer]", "Enter");
  await badge("2");
  const hello = alice.locator("[data-testid=message]", { hasText: "Hello?" });
  await hello.hover();
  alice.once("dialog", (dialog) => dialog.accept());
  await hello.getByRole("button", { name: "Delete" }).click();
  await alice.waitForSelector("[data-testid=message] .content:text-is('message deleted')");
  await badge("1");
  await room(bob, "Design review").click();
  await bob.waitForSelector("[data-testid=message]:has-text('Are you there?')");
  await room(bob, "Design review").locator("[data-testid=badge]").waitFor({ state: "detached" });
  await alice.waitForSelector("[data-testid=message]:has-text('Are you there?') .seen:has-text('seen by bob')");

  // The gateway restarts: both pages reconnect and the conversation goes on.
  await gateway.restart();
  await alice.waitForSelector("[data-testid=banner]:not([hidden])", { state: "attached" }).catch(() => {});
  await alice.waitForSelector("[data-testid=banner]", { state: "hidden" });
  await bob.waitForSelector("[data-testid=banner]", { state: "hidden" });
  await alice.fill("[data-testid=composer]", "Back after the restart");
  await alice.press("[data-testid=composer]", "Enter");
  await bob.waitForSelector("[data-testid=message]:has-text('Back after the restart')");

  await bob.screenshot({ path: path.join(screenshots, "web-client.png") });
});

/** The page's badges by room id (0 without one). */
async function badges(page) {
  return page.$$eval("#rooms li", (items) =>
    Object.fromEntries(items.map((li) => [li.dataset.key, Number(li.querySelector("[data-testid=badge]")?.textContent ?? 0)])),
  );
}

test("the page through a failing network: history of rooms that got messages first, a send kept across a reload, badges as the server counts", async () => {
  const t = tenant();
  const proxy = new Proxy(gateway.port);
  await proxy.listen();
  const bob = new ChatClient({ url: gateway.ws, token: await gateway.token("bob", t), WebSocket });
  await bob.connect();
  const { room: first } = await bob.createRoom({ name: "First", room_type: "group", participants: ["alice"] });
  await bob.sendMessage(first.id, "before alice came");
  const alice = await signIn("Alice", "alice", t, { origin: proxy.http });
  const { room: second } = await bob.createRoom({ name: "Second", room_type: "group", participants: ["alice"] });
  await bob.sendMessage(first.id, "while alice looked elsewhere");
  await room(alice, "Second").waitFor();

  // A room that got a live message before it was opened still loads its history.
  await room(alice, "First").click();
  await alice.waitForSelector("[data-testid=message]:has-text('before alice came')");
  await alice.waitForSelector("[data-testid=message]:has-text('while alice looked elsewhere')");

  // Offline: others go on; alice's message waits as "sending…", and survives a reload.
  proxy.cut();
  await alice.waitForSelector("[data-testid=banner]:has-text('Reconnecting')");
  for (const text of ["s1", "s2", "s3"]) await bob.sendMessage(second.id, text);
  await bob.sendMessage(first.id, "f-missed");
  await alice.fill("[data-testid=composer]", "sent while offline");
  await alice.press("[data-testid=composer]", "Enter");
  await alice.waitForSelector("[data-testid=message][data-status=pending]:has-text('sent while offline')");
  await alice.reload(); // the page comes through; WebSockets still hang
  proxy.restore();
  await alice.waitForSelector("#app:not([hidden])");
  await room(alice, "First").click();
  await alice.waitForSelector("[data-testid=message]:has-text('f-missed')");
  await alice.waitForSelector("[data-testid=message]:not([data-status]):has-text('sent while offline')");
  assert.equal(await alice.locator("[data-testid=message]:has-text('sent while offline')").count(), 1);
  const stored = (await bob.getHistory(first.id, { limit: 100 })).messages.filter((m) => m.content === "sent while offline");
  assert.equal(stored.length, 1, "stored once");

  // The badges are the server's counts.
  const server = new ChatClient({ url: gateway.ws, token: await gateway.token("alice", t), WebSocket });
  await server.connect();
  await until(async () => {
    const { rooms } = await server.getUnread();
    const shown = await badges(alice);
    const expected = Object.fromEntries(Object.keys(shown).map((id) => [id, rooms.find((u) => u.room_id === id)?.unread_count ?? 0]));
    return JSON.stringify(shown) === JSON.stringify(expected) && expected[second.id] === 3;
  }, "the badges to equal get_unread");
  server.close();

  // A link that died silently: the browser's offline event drops it at once (the heartbeat would
  // take half a minute), and online reconnects.
  proxy.stall();
  await alice.context().setOffline(true);
  await alice.waitForSelector("[data-testid=banner]:has-text('Reconnecting')");
  proxy.restore();
  await alice.context().setOffline(false);
  await alice.waitForSelector("[data-testid=banner]", { state: "hidden" });
  await bob.sendMessage(first.id, "after the offline spell");
  await alice.waitForSelector("[data-testid=message]:has-text('after the offline spell')");
  bob.close();
  proxy.close();
  await alice.context().close();
});

// ---- what a person sees ----

/** In the page: how a person finds `element`: on screen (inside the viewport and every box that
 * clips it, so not scrolled out of its list, and on top at its centre, not covered), showing a
 * focus ring, in which region, and what it says. */
function look(element) {
  const r = element.getBoundingClientRect();
  let clip = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
  for (let box = element.parentElement; box; box = box.parentElement) {
    const style = getComputedStyle(box);
    if (style.overflowX === "visible" && style.overflowY === "visible") continue;
    const c = box.getBoundingClientRect();
    clip = { left: Math.max(clip.left, c.left), top: Math.max(clip.top, c.top), right: Math.min(clip.right, c.right), bottom: Math.min(clip.bottom, c.bottom) };
  }
  const inside = r.width > 0 && r.height > 0 && r.left >= clip.left - 1 && r.top >= clip.top - 1 && r.right <= clip.right + 1 && r.bottom <= clip.bottom + 1;
  const style = getComputedStyle(element);
  return {
    label: `${element.localName} ${(element.getAttribute("aria-label") || element.textContent).trim().slice(0, 40)}`,
    region: element.closest("nav, main, aside")?.localName ?? "",
    seen: inside && element.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)),
    focusShown: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
  };
}

/** In the page: the elements that stick out sideways (cut off, or to be scrolled to). */
function sideways() {
  return [document.documentElement, ...document.body.querySelectorAll("*")]
    .filter((e) => {
      const r = e.getBoundingClientRect();
      const scrolls = e === document.documentElement || ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
      return (r.width > 0 && (r.left < -1 || r.right > innerWidth + 1)) || (scrolls && e.scrollWidth > e.clientWidth + 1);
    })
    .map((e) => `${e.localName}#${e.id}.${e.className}`);
}

/** Waits until what `locator` finds is on screen. */
const onScreen = (locator, what) => until(async () => (await locator.evaluate(look)).seen, `${what} on screen`);
const hidden = async (locator) => !(await locator.isVisible());
const nothingSideways = async (page, when) => assert.deepEqual(await page.evaluate(sideways), [], `nothing sticks out sideways ${when}`);

/** Presses `key` until the focused element matches `selector` and holds `text`. */
async function pressUntil(page, key, selector, text = "") {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press(key);
    const found = await page.evaluate(([s, t]) => document.activeElement?.matches(s) && document.activeElement.textContent.includes(t), [selector, text]);
    if (found) return;
  }
  throw new Error(`${key} never reached ${selector} ${text}: at ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 200))}`);
}

/** Every stop of the tab order: Tab to its end (the focus leaves the page), then round once more. */
async function tabStops(page) {
  const stops = [];
  for (let i = 0, passed = 0; i < 200 && passed < 2; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement === document.body)) passed++;
    else if (passed === 1) stops.push(await page.locator(":focus").evaluate(look)); // as it is now: lists re-render
  }
  assert.ok(stops.length > 0, "the tab order ends");
  return stops;
}

/** The tab order goes down the screens in order (room list, room, side pane), each stop on
 * screen with a focus ring, through the composers, and each list of messages is one stop. */
async function checkTabOrder(page, expected) {
  const stops = await tabStops(page);
  const regions = ["nav", "main", "aside"];
  for (const stop of stops) assert.ok(stop.seen && stop.focusShown, `tab stop ${stop.label} on screen with a focus ring`);
  const order = stops.map((s) => regions.indexOf(s.region));
  const labels = stops.map((s) => s.label).join(" | ");
  assert.deepEqual(order, [...order].sort((a, b) => a - b), `the tab order goes room list, room, pane: ${labels}`);
  assert.deepEqual([...new Set(stops.map((s) => s.region))], expected, labels);
  if (expected.includes("main")) assert.ok(stops.some((s) => s.label === "input Message"), `the composer is in the tab order: ${labels}`);
  if (expected.includes("aside")) assert.ok(stops.some((s) => s.label === "input Reply"), `the reply box is in the tab order: ${labels}`);
  const lists = stops.filter((s) => s.label.startsWith("li ")).map((s) => s.region);
  assert.deepEqual(lists, [...new Set(lists)], "one stop per list of messages");
}

/** axe-core on the page as it is: no serious or critical violations. */
async function audit(page, when) {
  await page.addScriptTag({ content: axe.source });
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`), [], `axe ${when}`);
}

/** In the page: whether an emoji is drawn in colour (an emoji font is installed), not as a box. */
function emojiInColour() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 32;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  g.font = "24px system-ui, sans-serif";
  g.fillText("👍", 2, 26);
  const d = g.getImageData(0, 0, 32, 32).data;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.max(Math.abs(d[i] - d[i + 1]), Math.abs(d[i + 1] - d[i + 2])) > 40) return true;
  return false;
}

// Longer than a screen at either size: [sender, text].
const CONVERSATION = [
  ["bob", "Morning! The mock-ups for the onboarding flow are in the shared folder."],
  ["alice", "Thanks, looking now."],
  ["bob", "I went with three steps instead of five."],
  ["alice", "Much better. The progress bar reads well."],
  ["bob", "Should the skip link stay on the last step?"],
  ["alice", "I'd keep it, some people just want to get in."],
  ["bob", "Fair. What about the illustration on step two?"],
  ["alice", "A bit busy on small screens, could we crop it?"],
  ["bob", "Sure, I'll try a tighter crop."],
  ["alice", "Can we check the button contrast before Friday?"],
  ["bob", "Copy is final, Maria signed it off 🎉"],
  ["alice", "Great, then only the crop is left."],
  ["bob", "Uploading the new crop in five minutes."],
  ["alice", "I'll review it straight away."],
];

/** Alice and Bob (each on a second device, through the library) have talked in "Design review"
 * (a thread, reactions) and Bob wrote twice in "Launch plan". */
async function conversation(t) {
  const connect = async (user, name) => {
    const client = new ChatClient({ url: gateway.ws, token: await gateway.token(user, t, name), WebSocket });
    await client.connect();
    return client;
  };
  const people = { alice: await connect("alice", "Alice"), bob: await connect("bob", "Bob") };
  const { bob, alice } = people;
  const { room } = await bob.createRoom({ name: "Design review", room_type: "group", participants: ["alice"] });
  const sent = {};
  for (const [who, text] of CONVERSATION) sent[text] = (await people[who].sendMessage(room.id, text)).message;
  const parent = sent["Can we check the button contrast before Friday?"];
  await bob.sendMessage(room.id, "Ran it through axe: all pass but the ghost button.", { reply_to: parent.id });
  await alice.sendMessage(room.id, "Let's darken that one then.", { reply_to: parent.id });
  await bob.addReaction(parent.id, "👍");
  await alice.addReaction(sent["Copy is final, Maria signed it off 🎉"].id, "🎉");
  await bob.addReaction(sent["I went with three steps instead of five."].id, "❤️");
  const { room: other } = await bob.createRoom({ name: "Launch plan", room_type: "group", participants: ["alice"] });
  await bob.sendMessage(other.id, "Beta invites go out on Monday.");
  await bob.sendMessage(other.id, "Could you draft the announcement?");
  return { room, parent, bob, close: () => Object.values(people).forEach((c) => c.close()) };
}

for (const device of [DESKTOP, PHONE]) {
  const { width, height } = device.context.viewport;
  test(`the page as a person sees it on a ${device.name} (${width}×${height}): visible, placed, by keyboard, accessible`, async () => {
    const t = tenant();
    const { room: designReview, parent, bob, close } = await conversation(t);
    const alice = await signIn("Alice", "alice", t, { device });
    const phone = device === PHONE;

    // Signed in: the sign-in card is gone, the room list is there with its unread badge.
    assert.ok(await hidden(alice.locator("#login")), "the sign-in card is not visible");
    await onScreen(room(alice, "Launch plan").locator("[data-testid=badge]:text-is('2')"), "the unread badge");
    assert.ok(await alice.evaluate(emojiInColour), "emoji are drawn in colour (install fonts-noto-color-emoji)");
    if (phone) assert.ok(await hidden(alice.locator("#room")), "on a phone the room list is a screen of its own");
    await nothingSideways(alice, "on the room list");

    // From the keyboard: Tab to the room, Enter opens it at its newest message, the composer focused.
    await pressUntil(alice, "Tab", "#rooms button", "Design review");
    await alice.keyboard.press("Enter");
    await alice.waitForSelector("#room-name:text('Design review')");
    const messages = alice.locator("#messages");
    const newest = messages.locator("[data-testid=message]").last();
    await onScreen(newest.filter({ hasText: "I'll review it straight away." }), "the newest message");
    assert.ok(await messages.evaluate((list) => list.scrollHeight > list.clientHeight), "more messages than fit");
    await onScreen(alice.locator("[data-testid=composer]"), "the composer");
    assert.ok(await alice.locator("[data-testid=composer]").evaluate((input) => input === document.activeElement), "the composer has the focus");
    if (phone) {
      assert.ok(await hidden(alice.locator("nav.sidebar")), "on a phone the room is a screen of its own");
      await onScreen(alice.locator("#back"), "the back button");
    }
    await nothingSideways(alice, "in the room");

    // Enter sends; Bob reads it (receipt), answers (announced to screen readers) and types.
    await alice.keyboard.type("Looks right at this size too");
    await alice.keyboard.press("Enter");
    const stored = alice.locator("[data-testid=message]:not([data-status])");
    await onScreen(newest.filter({ hasText: "Looks right at this size too" }).and(stored), "her message, stored, newest");
    await bob.markRead(designReview.id);
    await onScreen(newest.locator(".seen:has-text('seen by bob')"), "the read receipt");
    await bob.sendMessage(designReview.id, "Great, shipping it after lunch");
    await onScreen(newest.filter({ hasText: "Great, shipping it after lunch" }), "Bob's answer, newest");
    await alice.waitForSelector("[data-testid=announcer][aria-live=polite]:text-is('Bob: Great, shipping it after lunch')", { state: "attached" });
    const typing = alice.locator("[data-testid=typing]:has-text('Bob is typing')");
    bob.typingStart(designReview.id);
    await onScreen(typing, "Bob typing");
    await alice.screenshot({ path: path.join(screenshots, `web-${device.name}-room.png`) });
    await checkTabOrder(alice, phone ? ["main"] : ["nav", "main"]);
    await audit(alice, "with a room open");

    // Up the messages with the arrow keys to the thread; its replies open in the pane.
    await alice.locator("[data-testid=composer]").focus();
    await pressUntil(alice, "Shift+Tab", "#messages > li");
    await pressUntil(alice, "ArrowUp", "#messages > li", parent.content);
    await pressUntil(alice, "Tab", ".thread-link", "2 replies");
    await alice.keyboard.press("Enter");
    const pane = alice.locator("[data-testid=pane]");
    await onScreen(pane.locator("#thread-messages > li", { hasText: "Let's darken that one then." }), "the thread's replies");
    assert.ok(await pane.locator("input[name=content]").evaluate((input) => input === document.activeElement), "the reply box has the focus");
    await alice.keyboard.type("Done, it passes now");
    await alice.keyboard.press("Enter");
    await onScreen(pane.locator("#thread-messages > li", { hasText: "Done, it passes now" }), "her reply");
    if (phone) assert.ok(await hidden(alice.locator("#room")), "on a phone the pane is a screen of its own");
    else await onScreen(alice.locator("[data-testid=composer]"), "the composer beside the pane");
    await nothingSideways(alice, "with the thread open");
    bob.typingStart(designReview.id); // again: typing lasts 10 s
    if (!phone) await onScreen(typing, "Bob typing beside the pane");
    await alice.screenshot({ path: path.join(screenshots, `web-${device.name}-thread.png`) });
    await checkTabOrder(alice, phone ? ["aside"] : ["nav", "main", "aside"]);
    await audit(alice, "with the thread open");

    // Escape in the pane closes it and gives the focus back to the message.
    await pane.locator("input[name=content]").focus();
    await alice.keyboard.press("Escape");
    await pane.waitFor({ state: "hidden" });
    await onScreen(alice.locator("#messages > li:focus", { hasText: parent.content }), "the focus back on the message");

    // Receipts: a message of hers, its Info (by pointer on a phone: a tap shows the actions).
    const mine = alice.locator("#messages > li", { hasText: "Looks right at this size too" });
    if (phone) {
      await mine.locator(".content").tap();
      await onScreen(mine.getByRole("button", { name: "Info" }), "the actions under a tapped message");
      await mine.getByRole("button", { name: "Info" }).tap();
    } else {
      await pressUntil(alice, "ArrowDown", "#messages > li", "Looks right at this size too");
      await pressUntil(alice, "Tab", "button", "Info");
      await alice.keyboard.press("Enter");
    }
    await onScreen(pane.locator(".details p:text-is('Read by: bob')"), "who read it");
    await nothingSideways(alice, "with the receipts open");
    await alice.keyboard.press("Escape");
    await pane.waitFor({ state: "hidden" });

    if (phone) {
      // Back to the room list, the focus on the room it came from.
      await alice.locator("#back").tap();
      await onScreen(room(alice, "Launch plan"), "the room list");
      assert.ok(await hidden(alice.locator("#room")), "the room screen is gone");
      await onScreen(alice.locator("#rooms button:focus", { hasText: "Design review" }), "the focus on the room it came from");
    }
    close();
    await alice.context().close();
  });
}

// ---- moderation ----

test("moderation on the page: pins, a frozen room, slow mode, blocking and reports", async (context) => {
  const t = tenant();
  const carol = new ChatClient({ url: gateway.ws, token: await gateway.token("carol", t, "Carol"), WebSocket });
  context.after(() => carol.close()); // also when the test fails: it would reconnect forever
  await carol.connect();
  const alice = await signIn("Alice", "alice", t);
  context.after(() => alice.context().close());
  const bob = await signIn("Bob", "bob", t);
  context.after(() => bob.context().close());
  const composer = "[data-testid=composer]";
  const message = (page, text) => page.locator("#messages [data-testid=message]", { hasText: text });
  const stored = (page, text) => page.locator("#messages [data-testid=message]:not([data-status])", { hasText: text });
  const say = async (page, text) => {
    await page.fill(composer, text);
    await page.press(composer, "Enter");
  };

  // Alice opens a room (she is its admin) with Bob and Carol (through the library).
  await alice.click(".new-room summary");
  await alice.fill("#create-room input[name=name]", "Town square");
  await alice.fill("#create-room input[name=participants]", "bob, carol");
  await alice.click("#create-room button[type=submit]");
  await alice.waitForSelector("#room-name:text('Town square')");
  const roomId = await room(alice, "Town square").getAttribute("data-key");
  await room(bob, "Town square").click();
  await bob.waitForSelector("#room-name:text('Town square')");
  await alice.waitForSelector("[data-testid=freeze]:text-is('Freeze room')");
  await alice.waitForSelector("[data-testid=reports-button]:text-is('Reports (0)')");
  assert.ok(await hidden(bob.locator("[data-testid=room-tools]")), "a member without pins has no room tools");

  // Pins: Alice pins her welcome; Bob sees it pinned, lists the pins and jumps to it.
  await say(alice, "Welcome! Please keep it friendly.");
  const welcome = stored(alice, "Welcome! Please keep it friendly.");
  await welcome.hover();
  await welcome.getByRole("button", { name: "Pin", exact: true }).click();
  await bob.waitForSelector("[data-testid=pins-button]:has-text('1 pinned')");
  await message(bob, "Welcome!").locator(".pin-mark").waitFor();
  await bob.click("[data-testid=pins-button]");
  const pinned = bob.locator("[data-testid=pins] li", { hasText: "Welcome! Please keep it friendly." });
  await pinned.filter({ hasText: "pinned by Alice" }).waitFor();
  await pinned.getByRole("button", { name: "Show in chat" }).click();
  await bob.locator("#messages > li:focus", { hasText: "Welcome!" }).waitFor();
  await bob.click("#close-pane");
  await welcome.hover();
  await welcome.getByRole("button", { name: "Unpin", exact: true }).click();
  await bob.waitForSelector("[data-testid=pins-button]", { state: "hidden" });
  await welcome.hover();
  await welcome.getByRole("button", { name: "Pin", exact: true }).click();
  await bob.waitForSelector("[data-testid=pins-button]:has-text('1 pinned')");

  // Frozen: Bob's composer is off with the notice why; Alice (an admin) still posts; thawed.
  await alice.click("[data-testid=freeze]");
  await bob.waitForSelector("[data-testid=room-notice]:has-text('This room is frozen')");
  await bob.waitForSelector(`${composer}:disabled`);
  await bob.waitForSelector("[data-testid=room-flags]:has-text('Frozen')");
  await alice.waitForSelector("[data-testid=freeze]:text-is('Unfreeze room')");
  assert.ok(await alice.locator(composer).isEnabled(), "an admin's composer stays on");
  await say(alice, "Frozen for a minute");
  await stored(bob, "Frozen for a minute").waitFor();
  await alice.click("[data-testid=freeze]");
  await bob.waitForSelector(`${composer}:enabled`);
  await bob.waitForSelector("[data-testid=room-notice]", { state: "hidden" });

  // Slow mode: shown in the header; Bob's second quick message waits, kept in his composer.
  await alice.selectOption("[data-testid=slow-mode]", "30");
  await bob.waitForSelector("[data-testid=room-flags]:has-text('Slow mode: 30 s')");
  await say(bob, "First under slow mode");
  await stored(bob, "First under slow mode").waitFor();
  await say(bob, "Second too soon");
  const wait = bob.locator("[data-testid=wait]");
  await wait.filter({ hasText: /Slow mode: you can send again in \d+ s/ }).waitFor();
  assert.equal(await bob.inputValue(composer), "Second too soon", "the refused text is back in the composer");
  await message(bob, "Second too soon").waitFor({ state: "detached" });
  assert.ok(await bob.locator("#composer button[type=submit]").isDisabled(), "Send waits");
  await alice.selectOption("[data-testid=slow-mode]", "0");
  await bob.waitForSelector("[data-testid=room-flags]:has-text('Slow mode')", { state: "detached" });
  await wait.waitFor({ state: "hidden" });
  await bob.waitForSelector("#composer button[type=submit]:enabled");
  await bob.press(composer, "Enter");
  await stored(alice, "Second too soon").waitFor();

  // Reports: Bob reports Carol's spam; Alice finds it under Reports and deletes the message.
  await carol.sendMessage(roomId, "Hi all, Carol here");
  await carol.sendMessage(roomId, "Cheap watches at example.com");
  const spam = message(bob, "Cheap watches at example.com");
  await spam.hover();
  await spam.getByRole("button", { name: "Report" }).click();
  await bob.fill("#report-reason", "Spam");
  await bob.click("[data-testid=report-form] button[type=submit]");
  await bob.waitForSelector("[data-testid=reported]");
  await bob.click("#close-pane");
  await alice.waitForSelector("[data-testid=reports-button]:text-is('Reports (1)')");
  await alice.click("[data-testid=reports-button]");
  const report = (text) => alice.locator("[data-testid=report]", { hasText: text });
  await report("Reason: Spam").filter({ hasText: "Bob reported Carol" }).filter({ hasText: "Cheap watches at example.com" }).waitFor();

  // Alice's moderation controls: reachable by keyboard, on screen, accessible, also on a phone.
  const stops = await tabStops(alice);
  for (const stop of stops) assert.ok(stop.seen && stop.focusShown, `tab stop ${stop.label} on screen with a focus ring`);
  const labels = stops.map((s) => s.label).join(" | ");
  for (const control of ["button 📌 1 pinned", "button Reports (1)", "button Freeze room", "select", "button Dismiss", "button Delete message"]) {
    assert.ok(stops.some((s) => s.label.startsWith(control)), `${control} in the tab order: ${labels}`);
  }
  await nothingSideways(alice, "with the reports open");
  await audit(alice, "with the moderation controls and the reports open");
  await alice.setViewportSize(PHONE.context.viewport);
  await onScreen(report("Reason: Spam").getByRole("button", { name: "Dismiss" }), "a report on a phone");
  await nothingSideways(alice, "with the reports open on a phone");
  await audit(alice, "with the reports open on a phone");

  alice.once("dialog", (dialog) => dialog.accept());
  await report("Reason: Spam").getByRole("button", { name: "Delete message" }).click();
  await alice.waitForSelector("[data-testid=reports] li:text-is('No open reports.')");
  for (const page of [alice, bob]) { // Alice's room is behind the pane on a phone: attached
    await message(page, "Cheap watches").waitFor({ state: "detached" });
    await page.locator("#messages [data-testid=message] .content:text-is('message deleted')").waitFor({ state: "attached" });
  }
  await alice.click("#close-pane");
  await onScreen(alice.locator("[data-testid=reports-button]:text-is('Reports (0)')"), "the reports button on a phone, focused again");
  await nothingSideways(alice, "in the room on a phone");
  await alice.setViewportSize(DESKTOP.context.viewport);

  // Blocking: Bob blocks Carol from her message; it folds, and so does her next one (flagged by
  // the server), each with Show; Alice still reads them.
  const hi = message(bob, "Hi all, Carol here");
  await hi.hover();
  await hi.getByRole("button", { name: "Block Carol", exact: true }).click();
  await hi.waitFor({ state: "detached" });
  const folded = bob.locator("#messages [data-testid=message][data-blocked]");
  await folded.filter({ hasText: "Message from a blocked user" }).first().waitFor();
  await bob.waitForSelector("#members li:has-text('Carol') .tag:text-is('blocked')");
  await carol.sendMessage(roomId, "Anyone up for lunch?");
  await stored(alice, "Anyone up for lunch?").waitFor();
  await until(async () => (await folded.count()) === 2, "Carol's two messages folded on Bob's page");
  assert.equal(await message(bob, "Anyone up for lunch?").count(), 0, "a folded message's text is not on the page");
  await folded.last().getByRole("button", { name: "Show" }).click();
  const lunch = message(bob, "Anyone up for lunch?");
  await lunch.waitFor();
  await lunch.hover();

  // A second report, of the message shown anyway: it reaches Alice's open list live; dismissed.
  await alice.click("[data-testid=reports-button]");
  await alice.waitForSelector("[data-testid=reports] li:text-is('No open reports.')");
  await lunch.hover();
  await lunch.getByRole("button", { name: "Report" }).click();
  await bob.fill("#report-reason", "Off topic");
  await bob.click("[data-testid=report-form] button[type=submit]");
  await bob.waitForSelector("[data-testid=reported]");
  await report("Reason: Off topic").filter({ hasText: "Anyone up for lunch?" }).waitFor();
  await alice.waitForSelector("[data-testid=reports-button]:text-is('Reports (1)')");
  await report("Reason: Off topic").getByRole("button", { name: "Dismiss" }).click();
  await alice.waitForSelector("[data-testid=reports] li:text-is('No open reports.')");
  await stored(alice, "Anyone up for lunch?").waitFor();

  // Unblocked from the member list: her messages unfold.
  await bob.locator("#members").getByRole("button", { name: "Unblock Carol" }).click();
  await message(bob, "Hi all, Carol here").waitFor();
  await until(async () => (await folded.count()) === 0, "nothing folded after unblocking");
  await bob.screenshot({ path: path.join(screenshots, "web-moderation-member.png") });
  await alice.screenshot({ path: path.join(screenshots, "web-moderation-admin.png") });

});

test("the API page renders both documents served by the gateway, with no request elsewhere", async () => {
  const [asyncapi, openapi] = await Promise.all(["asyncapi", "openapi"].map((n) => fetch(`${gateway.http}/api/v1/${n}.json`).then((r) => r.json())));
  assert.equal(asyncapi.asyncapi, "3.0.0");
  assert.equal(openapi.openapi, "3.1.0");
  const context = await browser.newContext(DESKTOP.context);
  const page = await context.newPage();
  const elsewhere = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(gateway.http)) elsewhere.push(request.url());
  });
  await page.goto(`${gateway.http}/api/v1/docs`);
  await page.waitForSelector("#messages");
  const operations = await page.locator("#main details summary .tag").count();
  const http = Object.values(openapi.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  assert.equal(operations, Object.keys(asyncapi.operations).length + http);
  await page.locator("#receiveSendMessage summary").click();
  assert.match(await page.locator("#receiveSendMessage").innerText(), /message_sent[\s\S]*client_msg_id/);
  await page.screenshot({ path: path.join(screenshots, "api-docs.png") });
  assert.deepEqual(elsewhere, []);
  await context.close();
});
