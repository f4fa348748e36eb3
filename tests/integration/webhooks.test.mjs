// Webhooks against the real server and a real HTTP receiver on a loopback port: every event
// of a conversation and an article, signed (HMAC-SHA256 over "timestamp.body"), in order per
// conversation; a 500 retried with the same delivery id; the admin's delivery list and
// redelivery; a receiver that is down while a chat closes and a server killed with SIGKILL,
// the event delivered after the restart; and a delivery given up after webhook-max-age.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { startServer, runCaredesk, fixtures } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { sleep, waitFor } from './lib/wait.mjs';

const SECRET = 'whsec-test-7f3a';

// A receiver that verifies each request's signature and records it. failFirst(req) decides,
// per delivery id, whether its first attempt is answered 500.
async function receiver({ port = 0, failFirst = () => false, alwaysFail = false } = {}) {
  const requests = [];
  const seen = new Set();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const ts = req.headers['x-caredesk-timestamp'];
      const expected = 'sha256=' + crypto.createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex');
      const got = req.headers['x-caredesk-signature'] || '';
      const valid = got.length === expected.length
        && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected));
      const r = { headers: req.headers, body, json: JSON.parse(body), valid, at: Date.now() };
      const id = req.headers['x-caredesk-delivery'];
      let status = 200;
      if (alwaysFail || (!seen.has(id) && failFirst(r))) status = 500;
      seen.add(id);
      r.status = status;
      requests.push(r);
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'try again');
    });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    requests,
    port: server.address().port,
    url: `http://127.0.0.1:${server.address().port}/hooks/caredesk`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
    async waitFor(pred, what, ms = 15000) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const hit = requests.find(pred);
        if (hit) return hit;
        await sleep(50);
      }
      throw new Error(`no ${what} within ${ms} ms; got ${requests.map((q) => `${q.json.event}:${q.status}`).join(' ')}`);
    },
  };
}

async function addUser(srv, name, role) {
  const r = await runCaredesk(['user', 'add', name, '--role', role, '--skills', 'general,orders,billing,accounts,technical', '--db', srv.db]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').pop().trim();
}

// A conversation from hello to rating: created, messages, handoff, assigned, closed, rated.
async function wholeConversation(srv, agentToken) {
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello', lang: 'en', name: 'Sam', email: 'sam@example.com' });
  const welcome = await c.next((f) => f.type === 'welcome');
  c.send({ type: 'message', id: 'm1', text: 'my card 4242 4242 4242 4242 was charged twice' });
  await c.next((f) => f.reply_to === 'm1');
  c.send({ type: 'handoff' });
  await c.next((f) => f.type === 'queued');
  const a = await connect(`${srv.wsUrl}/agent`);
  a.send({ type: 'auth', token: agentToken });
  await a.next((f) => f.type === 'ready');
  const conv = welcome.conversation;
  a.send({ type: 'claim', conversation: conv });
  await a.next((f) => f.type === 'assigned' && f.conversation === conv);
  a.send({ type: 'message', conversation: conv, id: 'a1', text: 'Hi Sam, I can help.' });
  await a.next((f) => f.type === 'ack' && f.reply_to === 'a1');
  a.send({ type: 'close', conversation: conv, disposition: 'refund', note: 'refunded' });
  await c.next((f) => f.type === 'closed');
  await c.next((f) => f.type === 'rating_request');
  c.send({ type: 'rating', score: 5, comment: 'quick' });
  await c.next((f) => f.type === 'rating_ok');
  c.close();
  a.close();
  return conv;
}

test('every event arrives signed, in order per conversation; a 500 is retried with the same delivery id', async () => {
  const rx = await receiver({ failFirst: (r) => r.json.event === 'conversation.created' });
  const srv = await startServer({
    ...fixtures,
    args: ['--rate-limit', '0', '--webhook-url', rx.url, '--webhook-secret', SECRET,
      '--webhook-retry-base-ms', '300'],
  });
  try {
    const agent = await addUser(srv, 'Ana', 'agent');
    const author = await addUser(srv, 'Ada', 'author');
    const admin = await addUser(srv, 'Root', 'admin');
    const conv = await wholeConversation(srv, agent);
    const published = await fetch(`${srv.url}/api/articles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${author}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'webhook-zebra', title: 'Zebra care', body: 'Brush gently.', tags: ['care'] }),
    });
    assert.equal(published.status, 201);

    await rx.waitFor((r) => r.json.event === 'conversation.rated' && r.status === 200, 'conversation.rated');
    await rx.waitFor((r) => r.json.event === 'article.published' && r.status === 200, 'article.published');
    for (const r of rx.requests) {
      assert.ok(r.valid, `signature of ${r.json.event}`);
      assert.equal(r.headers['x-caredesk-event'], r.json.event);
      assert.equal(r.headers['x-caredesk-delivery'], r.json.id);
      assert.match(r.json.id, /^dlv_[0-9a-f]{32}$/);
      assert.ok(Math.abs(Number(r.headers['x-caredesk-timestamp']) * 1000 - r.at) < 5000, 'timestamp is now');
      assert.match(r.headers['content-type'], /^application\/json/);
      assert.match(r.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }

    // The 500 was retried: same delivery id, same body, later.
    const created = rx.requests.filter((r) => r.json.event === 'conversation.created');
    assert.equal(created.length, 2, 'one 500, one retry');
    assert.deepEqual(created.map((r) => r.status), [500, 200]);
    assert.equal(created[0].headers['x-caredesk-delivery'], created[1].headers['x-caredesk-delivery']);
    assert.equal(created[0].body, created[1].body);
    assert.ok(created[1].at - created[0].at >= 100, 'after a backoff');

    // In order per conversation: nothing of it was accepted before the created event.
    const accepted = rx.requests.filter((r) => r.status === 200 && r.json.conversation?.id === conv);
    const events = accepted.map((r) => r.json.event);
    assert.equal(events[0], 'conversation.created');
    const order = ['conversation.created', 'conversation.handoff', 'conversation.assigned', 'conversation.closed', 'conversation.rated'];
    const positions = order.map((e) => events.indexOf(e));
    assert.ok(positions.every((p) => p >= 0), `all of ${order} in ${events}`);
    assert.deepEqual([...positions].sort((x, y) => x - y), positions, `in order: ${events}`);
    const seqs = accepted.filter((r) => r.json.event === 'message.created').map((r) => r.json.message.seq);
    assert.ok(seqs.length >= 3, 'customer, bot and agent messages');
    assert.deepEqual([...seqs].sort((x, y) => x - y), seqs, 'messages in seq order');

    // Payloads: masked text, the bot's guess at handoff, the agent, disposition, rating.
    const card = accepted.find((r) => r.json.event === 'message.created' && r.json.message.sender === 'customer');
    assert.doesNotMatch(card.body, /4242 4242 4242 4242/);
    assert.match(card.json.message.text, /card/);
    const handoff = accepted.find((r) => r.json.event === 'conversation.handoff').json;
    assert.equal(typeof handoff.handoff.confidence, 'number');
    assert.ok(handoff.handoff.queue);
    assert.ok('intent' in handoff.handoff);
    assert.equal(handoff.conversation.customer.email, 'sam@example.com');
    assert.ok(accepted.find((r) => r.json.event === 'conversation.assigned').json.agent.id > 0);
    assert.equal(accepted.find((r) => r.json.event === 'conversation.closed').json.close.disposition, 'refund');
    assert.equal(accepted.find((r) => r.json.event === 'conversation.rated').json.rating.score, 5);
    const article = rx.requests.find((r) => r.json.event === 'article.published').json;
    assert.deepEqual(article.article, { id: 'webhook-zebra', title: 'Zebra care', lang: 'en', tags: ['care'], url: '/kb/webhook-zebra' });

    // The admin sees the deliveries, and can send one again (same delivery id).
    const list = await fetch(`${srv.url}/api/webhooks/deliveries?limit=200`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(list.status, 200);
    const body = await list.json();
    assert.equal(body.endpoints, 1);
    assert.equal(body.counts.failed, 0);
    const row = body.deliveries.find((d) => d.delivery === created[0].json.id);
    assert.equal(row.status, 'delivered');
    assert.equal(row.attempts, 2);
    assert.equal(row.last_http, 200);
    assert.equal(row.conversation, conv);
    const denied = await fetch(`${srv.url}/api/webhooks/deliveries`, { headers: { authorization: `Bearer ${author}` } });
    assert.equal(denied.status, 403);
    const one = await (await fetch(`${srv.url}/api/webhooks/deliveries/${row.id}`, { headers: { authorization: `Bearer ${admin}` } })).json();
    assert.equal(one.payload.id, row.delivery);
    const before = rx.requests.length;
    const again = await fetch(`${srv.url}/api/webhooks/deliveries/${row.id}/redeliver`, {
      method: 'POST', headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(again.status, 200);
    const resent = await rx.waitFor((r) => rx.requests.indexOf(r) >= before && r.json.id === row.delivery, 'the redelivery');
    assert.ok(resent.valid);
    assert.equal(resent.body, created[0].body);
    // /metrics counts this process's deliveries: the one retried after the 500, and the
    // delivered ones; nothing given up.
    const value = (text, name) => Number((text.match(new RegExp(`^${name} (\\d+)$`, 'm')) || [])[1]);
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      return value(text, 'caredesk_webhook_deliveries_total\\{result="delivered"\\}') >= accepted.length + 1
        && text;
    });
    assert.ok(value(metrics, 'caredesk_webhook_deliveries_total\\{result="retried"\\}') >= 1, metrics);
    assert.equal(value(metrics, 'caredesk_webhook_deliveries_total\\{result="failed"\\}'), 0);
    assert.ok(value(metrics, 'caredesk_webhook_attempts_total')
      >= value(metrics, 'caredesk_webhook_deliveries_total\\{result="delivered"\\}') + 1);
  } finally {
    await srv.stop();
    await rx.close();
  }
});

test('a chat closed while the receiver is down is delivered after SIGKILL and restart', async () => {
  // A port with nothing listening on it yet.
  const probe = await receiver();
  const port = probe.port;
  await probe.close();
  const url = `http://127.0.0.1:${port}/hooks/caredesk`;
  const args = ['--rate-limit', '0', '--webhook-url', url, '--webhook-secret', SECRET,
    '--webhook-events', 'conversation.closed', '--webhook-retry-base-ms', '200'];
  let srv = await startServer({ ...fixtures, args });
  let rx;
  try {
    const agent = await addUser(srv, 'Ana', 'agent');
    const admin = await addUser(srv, 'Root', 'admin');
    const conv = await wholeConversation(srv, agent);
    // The delivery is pending, its attempts refused.
    let row;
    for (let i = 0; i < 100 && !(row && row.attempts >= 1); i++) {
      const list = await (await fetch(`${srv.url}/api/webhooks/deliveries`, { headers: { authorization: `Bearer ${admin}` } })).json();
      row = list.deliveries.find((d) => d.event === 'conversation.closed');
      await sleep(50);
    }
    assert.equal(row.status, 'pending');
    assert.ok(row.attempts >= 1);
    assert.equal(row.last_http, null);
    assert.ok(row.last_error);
    await srv.kill();

    rx = await receiver({ port });
    srv = await srv.restart();
    const got = await rx.waitFor((r) => r.json.event === 'conversation.closed', 'conversation.closed after the restart');
    assert.ok(got.valid);
    assert.equal(got.json.id, row.delivery);
    assert.equal(got.json.conversation.id, conv);
    assert.equal(got.json.close.disposition, 'refund');
    await sleep(300);
    assert.deepEqual([...new Set(rx.requests.map((r) => r.json.event))], ['conversation.closed'], 'the filter holds');
  } finally {
    await srv.stop();
    if (rx) await rx.close();
  }
});

test('a delivery refused past webhook-max-age is marked failed; bad settings are refused at start', async () => {
  const rx = await receiver({ alwaysFail: true });
  const srv = await startServer({
    ...fixtures,
    args: ['--webhook-url', rx.url, '--webhook-secret', SECRET, '--webhook-events', 'conversation.*',
      '--webhook-retry-base-ms', '200', '--webhook-max-age', '1'],
  });
  try {
    const admin = await addUser(srv, 'Root', 'admin');
    const c = await connect(`${srv.wsUrl}/chat`);
    c.send({ type: 'hello', lang: 'en' });
    await c.next((f) => f.type === 'welcome');
    c.close();
    let row;
    for (let i = 0; i < 100 && row?.status !== 'failed'; i++) {
      const list = await (await fetch(`${srv.url}/api/webhooks/deliveries?status=failed`, { headers: { authorization: `Bearer ${admin}` } })).json();
      row = list.deliveries[0];
      await sleep(100);
    }
    assert.equal(row?.status, 'failed');
    assert.equal(row.last_http, 500);
    assert.ok(row.attempts >= 2);
    const ids = new Set(rx.requests.map((r) => r.headers['x-caredesk-delivery']));
    assert.equal(ids.size, 1, 'every attempt carried the same delivery id');
  } finally {
    await srv.stop();
    await rx.close();
  }
  for (const [bad, message] of [
    [['--webhook-url', 'ftp://example.com/x', '--webhook-secret', 's'], /not an http:\/\/ or https:\/\/ URL/],
    [['--webhook-url', 'https://example.com/x'], /needs a secret/],
    [['--webhook-url', 'https://example.com/x', '--webhook-secret', 's', '--webhook-events', 'chat.started'], /unknown event 'chat.started'/],
  ]) {
    const r = await runCaredesk(['serve', '--port', '0', '--db', ':memory:', ...bad]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
});

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const noBrowser = process.env.CAREDESK_NO_BROWSER ? 'CAREDESK_NO_BROWSER is set'
  : !existsSync(CHROMIUM) ? `${CHROMIUM} is missing (apt-get install chromium)` : null;

test('the dashboard shows a failed delivery and sends it again', noBrowser ? { skip: noBrowser } : { timeout: 120000 }, async () => {
  const rx = await receiver({ alwaysFail: true });
  const srv = await startServer({
    ...fixtures,
    args: ['--webhook-url', rx.url, '--webhook-secret', SECRET, '--webhook-events', 'conversation.created',
      '--webhook-retry-base-ms', '100', '--webhook-max-age', '1'],
  });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const admin = await addUser(srv, 'Root', 'admin');
    const c = await connect(`${srv.wsUrl}/chat`);
    c.send({ type: 'hello', lang: 'en' });
    const welcome = await c.next((f) => f.type === 'welcome');
    c.close();
    await rx.waitFor((r) => r.json.event === 'conversation.created', 'the first attempt');
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${srv.url}/dashboard/`);
    await page.locator('#token').fill(admin);
    await page.locator('#signin button[type=submit]').click();
    await page.locator('#app').waitFor({ state: 'visible' });
    await page.locator('#webhooks-card').waitFor({ state: 'visible' });
    const row = page.locator('#webhooks tbody tr').filter({ hasText: 'conversation.created' }).first();
    // The delivery fails within webhook-max-age; the panel refreshes on its button.
    for (let i = 0; i < 40; i++) {
      await page.locator('#webhooks-refresh').click();
      if (await row.locator('.pill.bad').count()) break;
      await sleep(250);
    }
    await row.locator('.pill.bad', { hasText: 'failed' }).waitFor();
    assert.match(await row.textContent(), new RegExp(`conversation\\.created\\s*${welcome.conversation}`));
    assert.match(await row.textContent(), /HTTP 500/);
    assert.match(await page.locator('#webhooks-counts').textContent(), /1 failed/);
    const delivery = await row.getAttribute('data-delivery');
    const before = rx.requests.length;
    await row.getByRole('button', { name: /Redeliver/ }).click();
    const again = await rx.waitFor((r) => rx.requests.indexOf(r) >= before, 'the redelivery');
    assert.equal(again.headers['x-caredesk-delivery'], delivery);
    assert.ok(again.valid);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await srv.stop();
    await rx.close();
  }
});
