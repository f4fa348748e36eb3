// Browser tests of the web front ends: Debian's chromium (/usr/bin/chromium,
// never a downloaded browser) driven by playwright-core, against the real
// caredesk server on a free loopback port (lib/server.mjs).
//
// - every page loads without a script error; screenshots of every page at
//   1280x800 and 390x844 go to build/screenshots/;
// - the widget: keyboard operation (launcher, focus into the message box,
//   Esc closes and returns focus), a readable text colour for any theme
//   colour, the websocket URL derived from its src;
// - axe-core (run through the devtools protocol, so the pages' CSP stays on)
//   finds no serious or critical violation in the widget, the demo page, the
//   sign-in pages and the signed-in consoles;
// - end to end: a customer asks a how-to question and sees the answer with its
//   article link; reloads and keeps the conversation; asks for a person and
//   sees the queue position; an agent (second browser context) signs in with
//   a token from `caredesk user add`, takes the chat, sees the transcript with
//   the bot's part and replies; the customer sees the reply; the agent closes
//   with a wrap-up; the customer rates; an author edits an article and the
//   next question finds the new text; the dashboard shows the conversation;
//   a customer says an answer did not help and the author teaches the KB
//   from the unanswered list in one click;
// - the widget survives a server restart: it shows the lost connection,
//   retries, and resumes the same conversation without replaying twice; a
//   stored conversation the server does not know is replaced by a new one;
// - the author's article life cycle: draft, publish, unpublish, delete, each
//   visible in search at once;
// - an agent transfers a chat to another queue: it leaves the agent and waits
//   in the new queue; typing shows both ways during the chat.
//   Each part checks first that the server has what it needs (the /chat and
//   /agent websockets, the REST routes) and is skipped, saying why, if not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { createRequire } from 'node:module';
import { startServer, repoRoot, addUser } from './lib/server.mjs';
import { isoWeek } from './lib/week.mjs';
import { connect } from './lib/client.mjs';

const require = createRequire(import.meta.url);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(repoRoot, 'build', 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const W = '#caredesk-widget'; // the widget's shadow host: locators pierce open shadow roots

const noBrowser = process.env.CAREDESK_NO_BROWSER ? 'CAREDESK_NO_BROWSER is set'
  : !existsSync(CHROMIUM) ? `${CHROMIUM} is missing (apt-get install chromium)` : null;

// Test options: skipped, saying why, when there is no browser to drive.
const opts = (timeout) => (noBrowser ? { skip: noBrowser, timeout } : { timeout });

let chromium;
let browser;
let srv;
let dir;
const tokens = {};
// QA audits use the shipped rubric (the server runs in a temporary directory); the
// widget asks NPS after the rating.
const qaArgs = ['--qa-rubric', path.join(repoRoot, 'qa/rubric.json'), '--nps'];
const caps = { chat: false, agent: false, api: false, kbpage: false, stats: false, why: [] };

function userAdd(name, role) {
  return addUser(path.join(dir, 'caredesk.db'), name, role);
}

// What the server under test can do yet: each end-to-end part needs some.
async function probe() {
  // Connects to path, sends first, and answers whether the first frame back has type want.
  const probeWs = async (path, first, want) => {
    try {
      const c = await connect(srv.wsUrl + path, { timeoutMs: 3000 });
      c.send(first);
      const f = await c.next(() => true, { timeoutMs: 3000 });
      if (f.type !== want) caps.why.push(`${path} answered ${first.type} with ${JSON.stringify(f)}`);
      c.close();
      return f.type === want;
    } catch (e) {
      caps.why.push(`${path}: ${e.message.split('\n')[0]}`);
      return false;
    }
  };
  caps.chat = await probeWs('/chat', { type: 'hello', lang: 'en' }, 'welcome');
  caps.agent = await probeWs('/agent', { type: 'auth', token: tokens.agent }, 'ready');
  try {
    const r = await fetch(srv.url + '/api/articles/gift-wrap', { headers: { Authorization: `Bearer ${tokens.author}` } });
    caps.api = r.status === 200;
    if (!caps.api) caps.why.push(`GET /api/articles/gift-wrap: HTTP ${r.status}`);
  } catch (e) { caps.why.push(`/api: ${e.message}`); }
  try {
    const r = await fetch(srv.url + '/api/stats', { headers: { Authorization: `Bearer ${tokens.admin}` } });
    caps.stats = r.status === 200;
    if (!caps.stats) caps.why.push(`GET /api/stats: HTTP ${r.status}`);
  } catch (e) { caps.why.push(`/api/stats: ${e.message}`); }
  try {
    const r = await fetch(srv.url + '/kb/returns-how-to');
    caps.kbpage = r.status === 200;
    if (!caps.kbpage) caps.why.push(`GET /kb/returns-how-to: HTTP ${r.status}`);
  } catch (e) { caps.why.push(`/kb: ${e.message}`); }
}

function need(t, ...what) {
  const missing = what.filter((w) => !caps[w]);
  if (!missing.length) return true;
  t.skip(`the server does not serve ${missing.join(', ')} yet (${caps.why.join('; ')})`);
  return false;
}

before(async () => {
  if (noBrowser) return;
  ({ chromium } = await import('playwright-core'));
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(path.join(tmpdir(), 'caredesk-browser-'));
  tokens.agent = await userAdd('Alex', 'agent');
  tokens.author = await userAdd('Robin', 'author');
  tokens.admin = await userAdd('Dana', 'admin');
  tokens.supervisor = await userAdd('Sage', 'supervisor');
  srv = await startServer({ dir, args: ['--rate-limit', '0', ...qaArgs] });
  // launch() gives every run a fresh temporary profile (user-data-dir).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await probe();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// A page that fails the test on any uncaught script error.
async function openPage(viewport, url, ctx) {
  const context = ctx || await browser.newContext({ viewport });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  if (url) await page.goto(srv.url + url, { waitUntil: 'load' });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

// Runs axe-core in the page (through the devtools protocol, so the page's
// Content-Security-Policy stays on) and returns the serious and critical
// violations within selector.
async function axeViolations(page, selector = 'html') {
  if (!await page.evaluate(() => typeof window.axe === 'object')) {
    await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  }
  const found = await page.evaluate(async (sel) => {
    // eslint-disable-next-line no-undef
    const r = await axe.run({ include: [[sel]] }, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  }, selector);
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

async function openWidget(page) {
  await page.locator(`${W} button.launcher`).click();
  await page.locator(`${W} #cd-panel`).waitFor({ state: 'visible' });
}

async function ask(page, text) {
  const box = page.locator(`${W} #cd-input`);
  await box.fill(text);
  await box.press('Enter');
}

async function signIn(page, token) {
  await page.locator('#token').fill(token);
  await page.locator('#signin button[type=submit]').click();
  await page.locator('#app').waitFor({ state: 'visible' });
}

// An available agent on /agent/ and a customer on the shop page who wrote
// question and then asked for a person: { agent, customer, conversation }.
async function handedOff(question) {
  const agent = await openPage(DESKTOP, '/agent/');
  await signIn(agent, tokens.agent);
  await agent.locator('#conn', { hasText: 'Online' }).waitFor();
  const customer = await openPage(DESKTOP, '/');
  await openWidget(customer);
  await ask(customer, question);
  await customer.locator(`${W} li.bot`).nth(1).waitFor({ timeout: 10000 });
  const person = customer.locator(`${W} button`, { hasText: 'Talk to a person' });
  if (await person.isVisible()) await person.click();
  await customer.locator(`${W} .banner:not([hidden])`).waitFor({ timeout: 10000 });
  const { conversation } = await customer.evaluate(() => window.__caredesk.state());
  return { agent, customer, conversation };
}

// Checks that none of the pages had a script error, then closes them.
async function closeClean(...pages) {
  for (const p of pages) assert.deepEqual(p.errors, []);
  for (const p of pages) await p.context().close();
}

// The agent takes the conversation from the queue and has it open.
async function take(agent, conversation) {
  await agent.locator(`#queue li[data-conversation="${conversation}"] button.take`).click({ timeout: 10000 });
  await agent.locator('#chat').waitFor({ state: 'visible' });
}

const sizes = [['desktop', DESKTOP], ['phone', PHONE]];

test('every page loads without a script error, screenshots at desktop and phone width', opts(180000), async () => {
  for (const [label, viewport] of sizes) {
    const home = await openPage(viewport, '/');
    assert.match(await home.title(), /Northwind Goods/);
    await home.locator(`${W} button.launcher`).waitFor();
    await shot(home, `home-${label}`);
    await openWidget(home);
    await shot(home, `widget-${label}`);
    assert.deepEqual(home.errors, [], 'script errors on /');
    await home.context().close();

    for (const [page, title] of [['agent/', /Agent console/], ['author/', /Knowledge base/], ['dashboard/', /Dashboard/],
      ['dashboard/report.html', /Weekly report/], ['qa/', /QA audits/]]) {
      const p = await openPage(viewport, `/${page}`);
      assert.match(await p.title(), title);
      // Signed out: the sign-in card, labelled and focused.
      await p.locator('#signin').waitFor({ state: 'visible' });
      await p.waitForFunction(() => document.activeElement && document.activeElement.id === 'token');
      assert.equal(await p.locator('label[for=token]').count(), 1);
      await shot(p, `${page.replace(/\/$/, '').replace(/[/.]/g, '-')}-signin-${label}`);
      if (label === 'desktop') assert.deepEqual(await axeViolations(p), [], `/${page} sign-in accessibility`);
      assert.deepEqual(p.errors, [], `script errors on /${page}`);
      await p.context().close();
    }
  }
});

test('a wrong token is refused with a message and nothing else shown', opts(30000), async (t) => {
  if (!need(t, 'stats')) return;
  const p = await openPage(DESKTOP, '/author/');
  await p.locator('#token').fill('not-a-real-token');
  await p.locator('#signin button[type=submit]').click();
  await p.locator('#signin-error').waitFor({ state: 'visible' });
  assert.match(await p.locator('#signin-error').textContent(), /not accepted/);
  assert.equal(await p.locator('#app').isVisible(), false);
  assert.equal(await p.evaluate(() => sessionStorage.getItem('caredesk.token')), null);
  await p.context().close();
});

test('widget: keyboard operable launcher, focus into the message box, Esc closes', opts(30000), async () => {
  const page = await openPage(DESKTOP, '/');
  const launcher = page.locator(`${W} button.launcher`);
  await launcher.focus();
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('Enter');
  await page.locator(`${W} #cd-panel`).waitFor({ state: 'visible' });
  assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
  await page.waitForFunction(() => document.querySelector('#caredesk-widget').shadowRoot.activeElement?.id === 'cd-input');
  // The dialog is labelled by its title, and the message box by a label.
  const panel = page.locator(`${W} #cd-panel`);
  assert.equal(await panel.getAttribute('role'), 'dialog');
  assert.equal(await page.locator(`${W} #cd-title`).textContent(), 'Northwind Help');
  assert.equal(await page.locator(`${W} label[for=cd-input]`).count(), 1);
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.evaluate(() => document.querySelector('#caredesk-widget').shadowRoot.activeElement?.className), 'launcher');
  // Space on the launcher opens it again.
  await page.keyboard.press('Space');
  await panel.waitFor({ state: 'visible' });
  await closeClean(page);
});

test('widget: theme colour gets readable text, speaks the page language, websocket URL comes from the script src', opts(30000), async (t) => {
  // A shop on another origin (its own loopback port) embeds the widget from the
  // caredesk server with a light theme colour and no data-caredesk attribute.
  const shopServer = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="es-MX"><head><title>Tienda</title></head><body><h1>Tienda</h1>
      <script src="${srv.url}/widget.js" data-color="#ffd54f" data-title="Ayuda" async></script></body></html>`);
  });
  await new Promise((resolve) => shopServer.listen(0, '127.0.0.1', resolve));
  t.after(() => shopServer.close());
  const shop = `http://127.0.0.1:${shopServer.address().port}/`;
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await openPage(DESKTOP, null, context);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(shop);
  const launcher = page.locator(`${W} button.launcher`);
  await launcher.waitFor();
  const ratio = await launcher.evaluate((el) => {
    const cs = getComputedStyle(el);
    const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = (c) => {
      const a = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
    };
    const l1 = lum(cs.backgroundColor), l2 = lum(cs.color);
    return (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  });
  assert.ok(ratio >= 4.5, `launcher contrast ${ratio.toFixed(2)} < 4.5`);
  // The page is in Spanish, so is the widget.
  assert.equal(await launcher.getAttribute('aria-label'), 'Abrir chat: Ayuda');
  await launcher.click();
  await page.waitForFunction(() => window.__caredesk);
  assert.equal(await page.locator(`${W} #cd-input`).getAttribute('placeholder'), 'Escribe tu pregunta…');
  await shot(page, 'widget-spanish-desktop');
  for (let i = 0; i < 50 && !sockets.includes(srv.wsUrl + '/chat'); i++) await page.waitForTimeout(100);
  assert.ok(sockets.includes(srv.wsUrl + '/chat'), `sockets opened: ${JSON.stringify(sockets)}`);
  await page.context().close();
});

test('widget: hello carries the page\'s <html lang>, not the browser\'s language', opts(30000), async (t) => {
  if (!caps.chat) return t.skip(caps.why.join('; '));
  const page = await openPage(DESKTOP, null);
  // Record what the widget sends (before any page script runs); then the page turns
  // Spanish, while the browser itself speaks English.
  await page.addInitScript(() => {
    const send = WebSocket.prototype.send;
    window.__sent = [];
    WebSocket.prototype.send = function (data) {
      window.__sent.push(String(data));
      return send.call(this, data);
    };
  });
  await page.goto(srv.url + '/', { waitUntil: 'load' });
  await page.evaluate(() => { document.documentElement.lang = 'es-MX'; });
  assert.match(await page.evaluate(() => navigator.language), /^en/);
  await openWidget(page);
  let hello;
  for (let i = 0; i < 50 && !hello; i++) {
    const sent = (await page.evaluate(() => window.__sent)).map((x) => JSON.parse(x));
    hello = sent.find((f) => f.type === 'hello');
    if (!hello) await page.waitForTimeout(100);
  }
  assert.ok(hello, 'the widget sent no hello');
  assert.equal(hello.lang, 'es');
  await page.context().close();
});

test('axe-core finds no serious or critical accessibility violation in the widget or the demo page', opts(60000), async () => {
  const page = await openPage(DESKTOP, '/');
  await openWidget(page);
  if (caps.chat) {
    await ask(page, 'How do I return an item?');
    await page.locator(`${W} li.bot .bubble a.article`).first().waitFor({ timeout: 10000 });
  }
  assert.deepEqual(await axeViolations(page, W), []);
  // Closed panel: the launcher alone must pass too; and the demo page around it.
  await page.keyboard.press('Escape');
  assert.deepEqual(await axeViolations(page, W), []);
  assert.deepEqual(await axeViolations(page), []);
  await page.context().close();
});

test('end to end: customer, agent, author and dashboard', opts(240000), async (t) => {
  const customerCtx = await browser.newContext({ viewport: DESKTOP });
  const customer = await openPage(DESKTOP, null, customerCtx);
  let agent;
  const marker = `Ask for the walnut-green Fjord tag ${Date.now() % 100000}`;

  await t.test('customer asks a how-to question and sees the answer with its article link', async (t2) => {
    if (!need(t2, 'chat')) return;
    await customer.goto(srv.url + '/');
    await openWidget(customer);
    await ask(customer, 'How do I return an item?');
    const link = customer.locator(`${W} li.bot .bubble a.article`).first();
    await link.waitFor({ timeout: 10000 });
    const href = await link.getAttribute('href');
    assert.match(href, /\/kb\/[a-z0-9_-]+$/);
    assert.ok(href.startsWith(srv.url), `article link ${href} should point at the caredesk server`);
    const answer = await customer.locator(`${W} li.bot`).last().textContent();
    assert.match(answer, /return/i);
    // The article page behind the link exists.
    if (caps.kbpage) assert.equal((await fetch(href)).status, 200);
    else t2.diagnostic(`article page not checked: ${caps.why.join('; ')}`);
    assert.match(await customer.locator(`${W} .conn`).textContent(), /Connected/);
    await shot(customer, 'widget-answer-desktop');
  });

  await t.test('the conversation survives a reload (token and last_seq)', async (t2) => {
    if (!need(t2, 'chat')) return;
    const before = await customer.evaluate(() => window.__caredesk.state());
    assert.ok(before.token, 'a token is stored');
    await customer.reload();
    await customer.locator(`${W} #cd-panel`).waitFor({ state: 'visible' });
    await customer.waitForFunction(() => window.__caredesk.state().connected);
    const after = await customer.evaluate(() => window.__caredesk.state());
    assert.equal(after.token, before.token);
    assert.ok(after.last_seq >= before.last_seq);
    assert.equal(await customer.locator(`${W} li.me`).filter({ hasText: 'How do I return an item?' }).count(), 1);
  });

  await t.test('agent signs in and is available', async (t2) => {
    if (!need(t2, 'chat', 'agent')) return;
    agent = await openPage(DESKTOP, '/agent/');
    await signIn(agent, tokens.agent);
    await agent.locator('#conn', { hasText: 'Online' }).waitFor();
    assert.equal(await agent.locator('#available').isChecked(), true);
    assert.match(await agent.locator('.topbar .who').textContent(), /Alex/);
  });

  await t.test('customer asks for a person and sees the queue position', async (t2) => {
    if (!need(t2, 'chat')) return;
    await customer.locator(`${W} button`, { hasText: 'Talk to a person' }).click();
    const banner = customer.locator(`${W} .banner`);
    await banner.waitFor({ state: 'visible', timeout: 10000 });
    await customer.waitForFunction(() => /in the queue|away right now/.test(
      document.querySelector('#caredesk-widget').shadowRoot.querySelector('.banner').textContent), null, { timeout: 10000 });
    // An agent is signed in and available, so this is a live queue, not an offline ticket.
    const text = await banner.textContent();
    if (caps.agent) assert.match(text, /1st in the queue/);
    else assert.match(text, /1st in the queue|away right now/);
    await shot(customer, 'widget-queued-desktop');
    await ask(customer, 'My order number is 10442.');
    await customer.locator(`${W} li.me`).filter({ hasText: '10442' }).waitFor();
  });

  await t.test('agent takes the chat, sees the transcript with the bot part, replies', async (t2) => {
    if (!need(t2, 'chat', 'agent')) return;
    const take = agent.locator('#queue li', { hasText: '10442' }).locator('button.take');
    await take.waitFor({ timeout: 10000 });
    await shot(agent, 'agent-queue-desktop');
    await take.click();
    await agent.locator('#chat').waitFor({ state: 'visible' });
    const transcript = agent.locator('#transcript');
    await transcript.locator('li.customer', { hasText: 'How do I return an item?' }).waitFor();
    assert.ok(await transcript.locator('li.bot').count() >= 1, 'the bot part is in the transcript');
    await transcript.locator('li.customer', { hasText: '10442' }).waitFor();
    // The bot's guess and what it offered are beside the transcript.
    assert.notEqual((await agent.locator('#triage').textContent()).trim(), '');
    await agent.locator('#reply-text').fill('Hi, this is Alex. I can see order 10442 and will start the return for you.');
    // Typing shows on the other side before the message arrives.
    await customer.locator(`${W} .typing:not([hidden])`, { hasText: 'Alex is typing' }).waitFor({ timeout: 10000 });
    await agent.locator('#reply-text').press('Enter');
    await transcript.locator('li.agent', { hasText: 'order 10442' }).waitFor();
    await shot(agent, 'agent-chat-desktop');
    await agent.setViewportSize(PHONE);
    await shot(agent, 'agent-chat-phone');
    await agent.setViewportSize(DESKTOP);
  });

  await t.test('customer sees the agent and the reply', async (t2) => {
    if (!need(t2, 'chat', 'agent')) return;
    await customer.locator(`${W} li.agent`, { hasText: 'will start the return' }).waitFor({ timeout: 10000 });
    assert.equal(await customer.locator(`${W} .typing`).isVisible(), false, 'the message replaces the typing indicator');
    // The customer typing shows in the console.
    await customer.locator(`${W} #cd-input`).pressSequentially('Thank', { delay: 20 });
    await agent.locator('#typing', { hasText: 'is typing' }).waitFor({ timeout: 10000 });
    await customer.locator(`${W} #cd-input`).fill('');
    assert.match(await customer.locator(`${W} .sub`).textContent(), /chatting with Alex/);
    await shot(customer, 'widget-agent-desktop');
    await customer.setViewportSize(PHONE);
    await shot(customer, 'widget-agent-phone');
    await customer.setViewportSize(DESKTOP);
  });

  await t.test('agent uses a canned reply from the KB', async (t2) => {
    if (!need(t2, 'chat', 'agent', 'api')) return;
    await agent.locator('#kb-q').fill('return label');
    await agent.locator('#kb-search button').click();
    const hit = agent.locator('#kb-results li').filter({ has: agent.locator('button') }).first();
    await hit.waitFor({ timeout: 10000 });
    await hit.locator('button', { hasText: 'Insert link' }).click();
    assert.match(await agent.locator('#reply-text').inputValue(), /\/kb\/[a-z0-9_-]+/);
    await agent.locator('#reply-text').press('Enter');
    await customer.locator(`${W} li.agent a[href*="/kb/"]`).waitFor({ timeout: 10000 });
    await shot(agent, 'agent-canned-desktop');
    assert.deepEqual(await axeViolations(agent), [], 'agent console accessibility');
  });

  await t.test('agent closes with a wrap-up, customer rates', async (t2) => {
    if (!need(t2, 'chat', 'agent')) return;
    await agent.locator('#close-chat').click();
    await agent.locator('#disposition').fill('returns');
    await agent.locator('#note').fill('Started the return for order 10442.');
    await agent.locator('#wrapup-ok').click();
    await agent.locator('#no-chat').waitFor({ state: 'visible', timeout: 10000 });
    const rating = customer.locator(`${W} form.rating`);
    await rating.waitFor({ state: 'visible', timeout: 10000 });
    await shot(customer, 'widget-rating-desktop');
    await customer.locator(`${W} .stars label`).nth(4).click();
    await customer.locator(`${W} #cd-comment`).fill('Quick and friendly.');
    await customer.locator(`${W} form.rating button.primary`).click();
    await customer.locator(`${W} li.event`, { hasText: 'Thank you for your feedback (5 of 5)' }).waitFor();
    await customer.locator(`${W} .restart button`).waitFor();
  });

  await t.test('an author edits an article and the next question finds the new text', async (t2) => {
    if (!need(t2, 'chat', 'api')) return;
    const author = await openPage(DESKTOP, '/author/');
    await signIn(author, tokens.author);
    await author.locator('#q').fill('gift-wrap');
    const item = author.locator('#list button[data-id="gift-wrap"]');
    await item.waitFor({ timeout: 10000 });
    await item.click();
    await author.locator('#editor').waitFor({ state: 'visible' });
    const body = author.locator('#f-body');
    await body.waitFor();
    const old = await body.inputValue();
    assert.ok(old.length > 20, 'the article body loads into the editor');
    await body.fill(`${old.trim()}\n\n${marker} at the till and we add the ribbon for free.\n`);
    assert.match(await author.locator('#preview').textContent(), /walnut-green Fjord tag/);
    await author.locator('#save').click();
    await author.locator('.toast', { hasText: /Saved/ }).waitFor({ timeout: 10000 });
    await shot(author, 'author-editor-desktop');
    assert.deepEqual(await axeViolations(author), [], 'author console accessibility');

    // Test a question in the console.
    await author.locator('#tab-test').click();
    await author.locator('#ask-q').fill('walnut-green Fjord tag');
    await author.locator('#ask button[type=submit]').click();
    await author.locator('#ranked li').first().waitFor({ timeout: 10000 });
    assert.match(await author.locator('#ranked li').first().textContent(), /gift/i);
    await shot(author, 'author-test-desktop');

    // The intents report: where the out-of-scope threshold landed and why.
    await author.locator('#tab-intents').click();
    await author.locator('#intents-oos p').waitFor({ timeout: 10000 });
    assert.match(await author.locator('#intents-oos p').textContent(), /P\(in scope\)/);
    assert.match(await author.locator('#intents-report').textContent(), /Intents the model confuses/);
    await shot(author, 'author-intents-desktop');

    // The next customer question finds the new text.
    await customer.locator(`${W} .restart button`).click();
    await ask(customer, 'What is the walnut-green Fjord tag?');
    const reply = customer.locator(`${W} li.bot`).filter({ has: customer.locator('a.article') }).last();
    await reply.waitFor({ timeout: 10000 });
    const hrefs = await reply.locator('a.article').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.some((h) => h.endsWith('/kb/gift-wrap')), `answer links ${JSON.stringify(hrefs)}`);
    const page = await (await fetch(srv.url + '/kb/gift-wrap')).text();
    assert.match(page, /walnut-green Fjord tag/);
    for (const [label, viewport] of sizes) {
      await author.setViewportSize(viewport);
      await author.locator('#tab-articles').click();
      await shot(author, `author-${label}`);
    }
    await author.locator('#tab-unanswered').click();
    await shot(author, 'author-unanswered-phone');
    await closeClean(author);
  });

  await t.test('the dashboard shows the conversation', async (t2) => {
    if (!need(t2, 'chat', 'stats')) return;
    const dash = await openPage(DESKTOP, '/dashboard/');
    await signIn(dash, tokens.admin);
    const tileValue = dash.locator('[data-kpi=conversations] .v');
    await tileValue.waitFor({ timeout: 10000 });
    await dash.waitForFunction(() => {
      const v = document.querySelector('[data-kpi=conversations] .v');
      return v && /\d/.test(v.textContent);
    }, null, { timeout: 10000 });
    const n = Number((await tileValue.textContent()).replace(/[^\d]/g, ''));
    assert.ok(n >= 1, `conversations today: ${n}`);
    // The team's figures: FCR of today's contacts, the service levels of the
    // queue the chat waited in, the live SLA tiles.
    await dash.waitForFunction(() => {
      const v = document.querySelector('[data-kpi=fcr] .v');
      return v && /%$/.test(v.textContent);
    }, null, { timeout: 10000 });
    await dash.locator('#sla table tbody tr').first().waitFor({ timeout: 10000 });
    assert.match(await dash.locator('#t-breached .v').textContent(), /^\d+$/);
    // How much customers ask about what no intent covers: measured after 100 questions.
    assert.match(await dash.locator('#oos-share').textContent(),
      /^(About [\d.]+% of the last [\d,]+ questions are about something no intent covers\.|The share of questions no intent covers is measured after 100 questions \(\d+ so far\)\.)$/);
    await dash.locator('#daily svg').waitFor();
    assert.deepEqual(await axeViolations(dash), [], 'dashboard accessibility');
    for (const [label, viewport] of sizes) {
      await dash.setViewportSize(viewport);
      await dash.waitForTimeout(200);
      await shot(dash, `dashboard-${label}`);
    }
    await closeClean(dash);
  });

  await t.test('a customer says an answer did not help; the author teaches the KB in one click', async (t2) => {
    if (!need(t2, 'chat', 'api')) return;
    const question = 'My lamp flickers when dimmed';
    const restart = customer.locator(`${W} .restart button`);
    if (await restart.count()) await restart.click();
    await ask(customer, question);
    await customer.locator(`${W} li.me`).filter({ hasText: question }).waitFor();
    await customer.waitForFunction((q) => {
      const items = [...document.querySelector('#caredesk-widget').shadowRoot.querySelectorAll('.log > li')];
      const i = items.findIndex((li) => li.classList.contains('me') && li.textContent.includes(q));
      return i >= 0 && items.slice(i + 1).some((li) => li.classList.contains('bot'));
    }, question, { timeout: 10000 });
    // The bot's answer (a fixed index: the "No" brings another reply after it).
    const bots = customer.locator(`${W} li.bot`);
    const reply = bots.nth((await bots.count()) - 1);
    const no = reply.locator('.fb button', { hasText: 'No' });
    if (await no.count()) {
      await no.click();
      await reply.locator('.fb', { hasText: 'Thanks for telling us' }).waitFor();
    }

    const author = await openPage(DESKTOP, '/author/');
    await signIn(author, tokens.author);
    await author.locator('#tab-unanswered').click();
    const row = author.locator('#unanswered li', { hasText: question });
    await row.waitFor({ timeout: 10000 });
    const select = row.locator('select');
    // The best current match is suggested, so one click does it.
    await author.waitForFunction((q) => {
      const li = [...document.querySelectorAll('#unanswered li')].find((x) => x.textContent.includes(q));
      return li && li.querySelector('select').value;
    }, question, { timeout: 10000 });
    const article = await select.inputValue();
    const score = async () => {
      const r = await (await fetch(`${srv.url}/api/search?q=${encodeURIComponent(question)}`)).json();
      const hit = (r.hits || []).find((h) => h.id === article);
      return hit ? hit.score : 0;
    };
    const before = await score();
    await shot(author, 'author-unanswered-desktop');
    await row.locator('button', { hasText: 'This article answers it' }).click();
    await row.locator('button', { hasText: 'Learned' }).waitFor({ timeout: 10000 });
    const after = await score();
    assert.ok(after > before, `learning raised ${article} for the question: ${before} -> ${after}`);
    await closeClean(author);
  });

  if (agent) {
    for (const [label, viewport] of sizes) {
      await agent.setViewportSize(viewport);
      await shot(agent, `agent-${label}`);
    }
    await closeClean(agent);
  }
  for (const [label, viewport] of sizes) {
    await customer.setViewportSize(viewport);
    await shot(customer, `widget-conversation-${label}`);
  }
  assert.deepEqual(customer.errors, []);
  await customerCtx.close();
});

test('widget: after a server restart it reconnects with backoff and resumes the same conversation', opts(90000), async (t) => {
  if (!need(t, 'chat')) return;
  const page = await openPage(DESKTOP, '/');
  await openWidget(page);
  await ask(page, 'How do I reset my password?');
  await page.locator(`${W} li.bot`).nth(1).waitFor({ timeout: 10000 });
  const before = await page.evaluate(() => window.__caredesk.state());
  assert.ok(before.token && before.last_seq >= 2, JSON.stringify(before));

  // Stop the server: the widget says so and keeps retrying.
  const port = srv.port;
  await srv.stop({ keepDir: true });
  await page.waitForFunction(() => /retrying|Reconnecting|Connecting/.test(
    document.querySelector('#caredesk-widget').shadowRoot.querySelector('.conn').textContent), null, { timeout: 10000 });
  assert.equal(await page.locator(`${W} .conn`).getAttribute('data-s') !== 'online', true);
  await shot(page, 'widget-reconnecting-desktop');

  // Same port, same database: the widget comes back by itself.
  srv = await startServer({ dir, args: ['--rate-limit', '0', '--port', String(port), ...qaArgs] });
  await page.waitForFunction(() => window.__caredesk.state().connected, null, { timeout: 45000 });
  const after = await page.evaluate(() => window.__caredesk.state());
  assert.equal(after.token, before.token, 'the same conversation resumed');
  assert.ok(after.last_seq >= before.last_seq);
  assert.equal(await page.locator(`${W} li.me`).filter({ hasText: 'reset my password' }).count(), 1,
    'nothing replayed twice');
  await ask(page, 'And how do I change my email address?');
  await page.locator(`${W} li.bot`).nth(2).waitFor({ timeout: 10000 });
  await closeClean(page);
});

test('widget: a stored conversation the server no longer knows starts a new one', opts(60000), async (t) => {
  if (!need(t, 'chat')) return;
  const page = await openPage(DESKTOP, '/');
  await page.evaluate((key) => localStorage.setItem(key, JSON.stringify({
    token: 'f'.repeat(64), last_seq: 3, state: 'bot',
    items: [{ kind: 'me', id: 'old1', text: 'An old question', status: 'sent', seq: 1, key: 'old1' }],
  })), `caredesk:${srv.wsUrl}/chat`);
  await page.reload();
  await openWidget(page);
  await page.waitForFunction(() => window.__caredesk.state().connected, null, { timeout: 15000 });
  const st = await page.evaluate(() => window.__caredesk.state());
  assert.ok(st.token && st.token !== 'f'.repeat(64), 'a new conversation token');
  await page.locator(`${W} li.event`, { hasText: 'That conversation has ended' }).waitFor();
  await ask(page, 'How do I track my order?');
  await page.locator(`${W} li.bot`).filter({ has: page.locator('a.article') }).first().waitFor({ timeout: 10000 });
  await closeClean(page);
});

test('author: create a draft, publish, unpublish and delete an article', opts(60000), async (t) => {
  if (!need(t, 'api')) return;
  const page = await openPage(DESKTOP, '/author/');
  page.on('dialog', (d) => d.accept()); // the delete confirmation
  await signIn(page, tokens.author);
  const hits = async () => {
    const r = await (await fetch(`${srv.url}/api/search?q=${encodeURIComponent('wash linen bedding gentle cycle')}`)).json();
    return (r.hits || []).map((h) => h.id);
  };
  await page.locator('#new').click();
  await page.locator('#f-title').fill('Caring for linen bedding');
  assert.equal(await page.locator('#f-id').inputValue(), 'caring-for-linen-bedding', 'the id follows the title');
  await page.locator('#f-tags').fill('linen, care');
  await page.locator('#f-questions').fill('how do I wash linen\nshould I iron linen sheets');
  await page.locator('#f-body').fill('# Caring for linen\n\nWash linen bedding at **40°C** on a gentle cycle.\n\n- Tumble dry low\n- Do not bleach\n');
  assert.equal(await page.locator('#preview strong').textContent(), '40°C');
  assert.equal(await page.locator('#preview li').count(), 2);
  await page.locator('#save').click();
  await page.locator('.toast', { hasText: 'Saved as a draft' }).waitFor({ timeout: 10000 });
  // The editor reloads the saved article from the server.
  await page.locator('#ed-status', { hasText: /^Draft$/ }).waitFor({ timeout: 10000 });
  assert.ok(!(await hits()).includes('caring-for-linen-bedding'), 'a draft is not searchable');

  await page.locator('#publish').click();
  await page.locator('.toast', { hasText: 'Published' }).waitFor({ timeout: 10000 });
  await page.locator('#ed-status', { hasText: /^Published$/ }).waitFor({ timeout: 10000 });
  assert.equal((await hits())[0], 'caring-for-linen-bedding', 'published: found at once, first');
  assert.equal((await fetch(`${srv.url}/kb/caring-for-linen-bedding`)).status, 200);

  await page.locator('#unpublish').click();
  await page.locator('.toast', { hasText: 'draft' }).waitFor({ timeout: 10000 });
  await page.locator('#ed-status', { hasText: /^Draft$/ }).waitFor({ timeout: 10000 });
  assert.ok(!(await hits()).includes('caring-for-linen-bedding'), 'unpublished: gone from search');

  // The list shows the draft (GET /api/articles lists drafts), and its revisions come newest
  // first: the current one, then the two before it, each of which can be shown and restored.
  await page.locator('#list li', { hasText: 'Caring for linen bedding' }).waitFor({ timeout: 10000 });
  const revs = page.locator('#revisions li');
  await revs.nth(2).waitFor({ timeout: 10000 });
  assert.equal(await revs.count(), 3);
  assert.match(await revs.nth(0).textContent(), /Revision 3.*current/);
  assert.equal(await revs.nth(0).locator('button', { hasText: 'Restore' }).count(), 0);
  assert.match(await revs.nth(2).textContent(), /Revision 1/);
  await revs.nth(2).locator('button', { hasText: 'Show' }).click();
  await revs.nth(2).locator('.diffbox strong', { hasText: '40°C' }).waitFor({ timeout: 5000 });
  assert.equal(await revs.nth(2).locator('button', { hasText: 'Restore' }).count(), 1);

  await page.locator('#delete').click();
  await page.locator('.toast', { hasText: 'Deleted' }).waitFor({ timeout: 10000 });
  const r = await fetch(`${srv.url}/api/articles/caring-for-linen-bedding`, { headers: { Authorization: `Bearer ${tokens.author}` } });
  assert.equal(r.status, 404);
  await closeClean(page);
});

test('agent: transfer a chat to another queue', opts(60000), async (t) => {
  if (!need(t, 'chat', 'agent')) return;
  const { agent, customer, conversation } = await handedOff('I have a question about my invoice 7781');
  const item = agent.locator(`#queue li[data-conversation="${conversation}"]`);
  await take(agent, conversation);
  const from = await agent.locator('#transfer-queue').inputValue();
  const options = await agent.locator('#transfer-queue option').evaluateAll((os) => os.map((o) => o.value));
  const to = options.find((q) => q !== from);
  assert.ok(to, `another queue to transfer to: ${JSON.stringify(options)}`);
  await agent.locator('#transfer-queue').selectOption(to);
  await agent.locator('#transfer').click();
  await agent.locator('.toast', { hasText: 'Transferred' }).waitFor({ timeout: 10000 });
  await agent.locator('#no-chat').waitFor({ state: 'visible' });
  assert.equal(await agent.locator('#mine li button').count(), 0, 'the chat left this agent');
  // Back in the waiting list, in the new queue; the customer waits again.
  await item.locator('.pill', { hasText: to }).waitFor({ timeout: 10000 });
  await customer.locator(`${W} .banner:not([hidden])`).waitFor({ timeout: 10000 });
  await closeClean(agent, customer);
});

test('weekly report page: figures against last week, SVG charts, print layout, CSV download', opts(60000), async (t) => {
  if (!need(t, 'chat', 'agent', 'stats')) return;
  const week = isoWeek(new Date());
  const page = await openPage(DESKTOP, `/dashboard/report.html#${week}`);
  await signIn(page, tokens.admin);
  await page.locator('#report-title', { hasText: week }).waitFor({ timeout: 10000 });
  // This week's conversations (the end-to-end test's) against none before.
  const tile = page.locator('[data-kpi=conversations]');
  await tile.waitFor();
  assert.ok(Number((await tile.locator('.v').textContent()).replace(/[^\d]/g, '')) >= 1);
  assert.match(await tile.locator('.s').textContent(), /^↑ \+\d+ vs 0$/);
  await page.locator('#drivers-chart svg[role=img]').waitFor();
  await page.locator('#sla-chart svg[role=img]').waitFor();
  assert.match(await page.locator('#drivers-chart svg').getAttribute('aria-label'), /previous 0/);
  assert.ok(await page.locator('#drivers-table tbody tr').count() >= 1);
  await page.locator('#nps p').first().waitFor(); // the NPS verbatims, or that there are none
  assert.deepEqual(await axeViolations(page), [], 'report page accessibility');
  for (const [label, viewport] of sizes) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(200);
    await shot(page, `report-${label}`);
  }
  await page.setViewportSize(DESKTOP);
  // Printed: the controls and the console bar are left out.
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('#week-form').isVisible(), false);
  assert.equal(await page.locator('.topbar').isVisible(), false);
  assert.equal(await page.locator('#drivers-chart svg').isVisible(), true);
  await page.emulateMedia({ media: 'screen' });
  // The CSV a BI tool reads, downloaded with the page's token.
  const [download] = await Promise.all([page.waitForEvent('download'),
    page.locator('.downloads a[data-format=csv]').click()]);
  assert.equal(download.suggestedFilename(), `caredesk-${week}.csv`);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.match(csv, /^section,name,metric,value,previous,change\r\n/);
  assert.match(csv, /^kpi,conversations,count,[1-9]\d*,0,[1-9]\d*\r$/m);
  await closeClean(page);
});

test('QA: a supervisor draws the sample and scores a chat, an admin scores it too, calibration shows the spread, the agent sees both', opts(90000), async (t) => {
  if (!need(t, 'chat', 'agent', 'stats')) return;
  const rubric = await fetch(`${srv.url}/api/qa/rubric`, { headers: { Authorization: `Bearer ${tokens.supervisor}` } });
  if (rubric.status !== 200) { t.skip(`GET /api/qa/rubric: HTTP ${rubric.status}`); return; }
  const review = async (token, points, comment) => {
    const page = await openPage(DESKTOP, '/qa/');
    await signIn(page, token);
    await page.locator('#tab-sample[aria-selected=true]').waitFor();
    if (!await page.locator('#sample tbody tr').count()) {
      await page.locator('#draw').click();
      await page.locator('#sample tbody tr').first().waitFor({ timeout: 10000 });
    }
    await page.locator('#sample tbody tr button.review').first().click();
    await page.locator('#transcript li').first().waitFor({ timeout: 10000 });
    for (const [criterion, p] of Object.entries(points)) {
      await page.locator(`#criteria fieldset[data-criterion=${criterion}] input[value="${p}"]`).check();
    }
    await page.locator('#comment').fill(comment);
    await page.locator('#audit-form button[type=submit]').click();
    await page.locator('#audit-result', { hasText: 'Saved' }).waitFor({ timeout: 10000 });
    return page;
  };
  const all4 = { greeting: 4, correct_answer: 4, no_sensitive_data: 4, empathy: 4, next_step: 4 };
  const sup = await review(tokens.supervisor, { ...all4, greeting: 2 }, 'Greet the customer by name.');
  assert.match(await sup.locator('#audit-result').textContent(), /Saved: 95%, passed/);
  assert.deepEqual(await axeViolations(sup), [], 'QA review accessibility');
  for (const [label, viewport] of sizes) {
    await sup.setViewportSize(viewport);
    await sup.waitForTimeout(200);
    await shot(sup, `qa-review-${label}`);
  }
  await sup.setViewportSize(DESKTOP);
  const admin = await review(tokens.admin, { ...all4, empathy: 2 }, 'Fine.');
  assert.match(await admin.locator('#audit-result').textContent(), /Saved: 92\.5%, passed/);
  await admin.context().close();

  await sup.locator('#tab-calibration').click();
  await sup.locator('#calibration-summary tbody tr').first().waitFor({ timeout: 10000 });
  const greeting = sup.locator('#calibration tr[data-criterion=greeting] td.spread').first();
  assert.equal(await greeting.textContent(), '2');
  assert.equal(await sup.locator('#calibration tr[data-criterion=correct_answer] td.spread').first().textContent(), '0');
  assert.deepEqual(await axeViolations(sup), [], 'QA calibration accessibility');
  await shot(sup, 'qa-calibration-desktop');
  await closeClean(sup);

  // The agent: their own audits, with the reviewers' comments.
  const agent = await openPage(DESKTOP, '/qa/');
  await signIn(agent, tokens.agent);
  await agent.locator('#tab-mine[aria-selected=true]').waitFor();
  assert.equal(await agent.locator('#tab-sample').isVisible(), false);
  await agent.locator('#mine tbody tr').first().waitFor({ timeout: 10000 });
  assert.ok(await agent.locator('#mine tbody tr').count() >= 2);
  await agent.locator('#mine td', { hasText: 'Greet the customer by name.' }).waitFor();
  assert.deepEqual(await axeViolations(agent), [], 'QA agent view accessibility');
  await shot(agent, 'qa-agent-desktop');
  await closeClean(agent);
});

test('escalation status update: the agent sends one, the customer sees the card, a tracking id finds it', opts(60000), async (t) => {
  if (!need(t, 'chat', 'agent', 'stats')) return;
  const { agent, customer, conversation } = await handedOff('My refund has not arrived');
  await take(agent, conversation);

  await agent.locator('#status-open').click();
  await agent.locator('#status-dialog[open]').waitFor();
  assert.ok(await agent.locator('#su-tz').inputValue(), 'the time zone defaults to the browser\'s');
  await agent.locator('#su-owner').fill('Billing team');
  await agent.locator('#su-status').fill('Refund approved; the bank is processing it');
  await agent.locator('#su-next').fill('2099-01-02T09:30');
  await agent.locator('#su-tz').fill('Europe/Madrid');
  await agent.locator('#su-workaround').fill('Store credit is available meanwhile');
  assert.deepEqual(await axeViolations(agent, '#status-dialog'), [], 'status update dialog accessibility');
  await agent.locator('#status-form button[type=submit]').click();
  // The agent's transcript shows the card with the generated tracking id.
  const mine = agent.locator('#transcript .status-card', { hasText: /INC-\d{4}-\d{4}-\d{4}/ });
  await mine.waitFor({ timeout: 10000 });
  const trackingId = (await mine.textContent()).match(/INC-\d{4}-\d{4}-\d{4}/)[0];

  // The customer sees it as a card, the next update in their own time.
  const card = customer.locator(`${W} .su`);
  await card.waitFor({ timeout: 10000 });
  const text = await card.textContent();
  assert.match(text, /Status update/);
  assert.ok(text.includes(trackingId), text);
  assert.match(text, /Billing team/);
  assert.match(text, /Refund approved; the bank is processing it/);
  assert.match(text, /Store credit is available meanwhile/);
  assert.match(text, /2099/);
  assert.deepEqual(await axeViolations(customer, '#caredesk-widget'), [], 'widget with a status card');
  await shot(customer, 'widget-status-update');
  await shot(agent, 'agent-status-update');
  // A reload keeps the card (the panel opens again by itself).
  await customer.reload({ waitUntil: 'load' });
  await customer.locator(`${W} #cd-panel`).waitFor({ state: 'visible' });
  await customer.locator(`${W} .su`).waitFor({ timeout: 10000 });

  // Searchable by tracking id, and in the transcript and export.
  const found = await fetch(`${srv.url}/api/status-updates?tracking_id=${trackingId.toLowerCase()}`,
    { headers: { Authorization: `Bearer ${tokens.agent}` } }).then((r) => r.json());
  assert.equal(found.updates.length, 1);
  assert.equal(found.updates[0].conversation, conversation);
  assert.equal(found.updates[0].status_update.owner, 'Billing team');
  const transcript = await fetch(`${srv.url}/api/conversations/${conversation}`,
    { headers: { Authorization: `Bearer ${tokens.admin}` } }).then((r) => r.json());
  const msg = transcript.messages.find((m) => m.meta && m.meta.status_update);
  assert.equal(msg.meta.status_update.tracking_id, trackingId);
  assert.match(msg.text, new RegExp(`^Status update ${trackingId}\\n`));
  const bad = await fetch(`${srv.url}/api/status-updates?tracking_id=nope`,
    { headers: { Authorization: `Bearer ${tokens.agent}` } });
  assert.equal(bad.status, 400);
  await closeClean(agent, customer);
});

test('NPS: after the rating the widget asks how likely the customer is to recommend us', opts(60000), async (t) => {
  if (!need(t, 'chat', 'agent', 'stats')) return;
  const { agent, customer, conversation } = await handedOff('Where is my parcel?');
  await take(agent, conversation);
  await customer.locator(`${W} button`, { hasText: 'End chat' }).click({ timeout: 10000 });
  await customer.locator(`${W} form.rating`).waitFor({ state: 'visible', timeout: 10000 });
  await customer.locator(`${W} form.rating .stars label`).nth(3).click();
  await customer.locator(`${W} form.rating button.primary`).click();
  const nps = customer.locator(`${W} form.nps`);
  await nps.waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await nps.locator('input[type=radio]').count(), 11);
  assert.deepEqual(await axeViolations(customer, '#caredesk-widget'), [], 'widget NPS question');
  await shot(customer, 'widget-nps-desktop');
  await nps.locator('.nps-scale label').nth(9).click();
  await nps.locator('textarea').fill('Friendly, but the parcel is still late');
  await nps.locator('button.primary').click();
  await customer.locator(`${W} li.event`, { hasText: 'Thank you! (9 of 10)' }).waitFor();
  assert.equal(await nps.isVisible(), false);
  const since = Math.floor(Date.now() / 1000) - 3600;
  const stats = await fetch(`${srv.url}/api/stats?since=${since}&until=${since + 7200}`,
    { headers: { Authorization: `Bearer ${tokens.admin}` } }).then((r) => r.json());
  assert.ok(stats.nps && stats.nps.n >= 1, JSON.stringify(stats.nps));
  assert.ok(stats.nps.by_driver.some((d) => d.verbatims.some((v) => v.score === 9
    && v.comment === 'Friendly, but the parcel is still late')), JSON.stringify(stats.nps));
  assert.deepEqual(customer.errors, []);
  await agent.context().close();
  await customer.context().close();
});
