// The web page in headless Chromium (Debian's package, driven by playwright-core): two users chat.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { Gateway, WAIT_MS, screenshots, tenant } from "./harness.mjs";

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

async function signIn(name, user, t) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (error) => console.error(`${user}: page error`, error));
  await page.goto(gateway.http);
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
