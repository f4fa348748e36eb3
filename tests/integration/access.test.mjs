// Access control against the real server: a customer reaches only the
// conversation of their own token (never by id, never with a changed,
// truncated or extended token, never on /agent or REST); agents, authors and
// admins only what their role allows; a removed account's token is refused
// when replayed; tokens are stored only as hashes; repeated bad tokens are
// throttled on /agent and /chat; admin and author actions are in the audit
// log; the websocket origin allow-list holds against look-alike origins;
// every REST response and page carries the security headers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { startServer, runCaredesk, fixtures, addUser } from './lib/server.mjs';
import { connect, openCustomer, ask } from './lib/client.mjs';
import { rest } from './lib/rest.mjs';
import { sqlite, hasSqliteCli } from './lib/sqlite.mjs';
import { waitFor } from './lib/wait.mjs';

let srv;
let noChat = false;
const tokens = {};
const ALLOWED = 'https://shop.example';

const api = (method, path, token, body) => rest(srv.url, method, path, { token, body });

// A customer with a conversation and one answered message.
async function customer(text, server = srv) {
  const c = await openCustomer(server, { type: 'hello', lang: 'en', name: 'Sam', email: 'sam@example.com' });
  await ask(c, 'm1', text);
  return { c, id: c.welcome.conversation, token: c.welcome.token };
}

// hello with token: resolves with the welcome, or the error frame.
async function helloWith(token, extra = {}, server = srv) {
  const c = await connect(`${server.wsUrl}/chat`);
  c.send({ type: 'hello', token, last_seq: 0, ...extra });
  const f = await c.next((x) => x.type === 'welcome' || x.type === 'error');
  if (f.type === 'welcome') await c.replayed(f);
  c.close();
  return { first: f, frames: c.frames };
}

before(async () => {
  srv = await startServer({ ...fixtures, args: ['--allowed-origins', ALLOWED, '--rate-limit', '0'] });
  noChat = srv.events('chat_unavailable').length > 0;
  tokens.agent = await addUser(srv.db, 'alan', 'agent');
  tokens.author = await addUser(srv.db, 'ada', 'author');
  tokens.admin = await addUser(srv.db, 'grace', 'admin');
});

after(async () => { if (srv) await srv.stop(); });

test('a customer reaches only the conversation of their own token', async (t) => {
  if (noChat) return t.skip('no chat module');
  // A server of its own: bad tokens here get 127.0.0.1 throttled.
  const own = await startServer({ ...fixtures, quiet: true, args: ['--rate-limit', '0'] });
  try {
    const a = await customer('where is my order 1111?', own);
    const b = await customer('how do I return shoes 2222?', own);
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.token, b.token);

    // A's token with B's id in any field still means A; B's token means B.
    const r = await helloWith(a.token, { conversation: b.id, id: b.id }, own);
    assert.equal(r.first.type, 'welcome');
    assert.equal(r.first.conversation, a.id);
    assert.ok(!JSON.stringify(r.frames).includes('2222'), 'B\'s text reached A');
    const rb = await helloWith(b.token, {}, own);
    assert.equal(rb.first.conversation, b.id);
    assert.ok(!JSON.stringify(rb.frames).includes('1111'), 'A\'s text reached B');

    // Agent frames on /chat are unknown there and change nothing.
    for (const type of ['claim', 'auth', 'transfer', 'status']) {
      a.c.send({ type, conversation: b.id, token: tokens.agent, queue: 'billing' });
      const err = await a.c.next((f) => f.type === 'error');
      assert.ok(['unknown_type', 'bad_frame', 'bad_state'].includes(err.code), err.code);
    }
    a.c.close();
    b.c.close();

    // Customer tokens are not accounts: not on REST, not on /agent.
    const rest = await fetch(`${own.url}/api/conversations/${a.id}`,
      { headers: { authorization: `Bearer ${a.token}` } });
    await rest.text();
    assert.equal(rest.status, 401);
    const ag = await connect(`${own.wsUrl}/agent`);
    ag.send({ type: 'auth', token: a.token });
    const e = await ag.next((f) => f.type === 'error');
    assert.ok(['bad_token', 'throttled'].includes(e.code));
    assert.equal((await ag.whenClosed()).code, 1008);

    // Changed, truncated, extended, non-hex or non-string tokens: an error or a 1008 close,
    // never a welcome (after a few, the address is throttled: also a refusal).
    const flip = (x, i) => x.slice(0, i) + (x[i] === '0' ? '1' : '0') + x.slice(i + 1);
    const bad = [flip(b.token, 0), flip(b.token, 63), flip(b.token, 31), b.token.slice(0, 63),
      b.token.slice(0, 32), b.token.slice(0, 1), '', `${b.token}0`, `${b.token}${b.token}`,
      b.token.replace(/[0-9]/g, 'g'), ' '.repeat(64), `${b.token.slice(0, 63)}\u0000`,
      String(b.id), 12345, null, [b.token], { token: b.token }];
    for (const tok of bad) {
      const c = await connect(`${own.wsUrl}/chat`);
      c.send({ type: 'hello', token: tok, last_seq: 0 });
      const f = await Promise.race([c.next((x) => x.type === 'welcome' || x.type === 'error'),
        c.whenClosed().then(() => ({ type: 'closed' }))]);
      // null is "no token": a new conversation, never B's or A's.
      if (tok === null && f.type === 'welcome') {
        assert.ok(f.conversation !== a.id && f.conversation !== b.id && f.seq === 0);
      } else {
        assert.notEqual(f.type, 'welcome', `token ${JSON.stringify(tok)} was accepted`);
      }
      c.close();
    }
  } finally {
    await own.stop();
  }
});

test('roles: agents, authors and admins get only their routes', async (t) => {
  const article = { id: 'access-test', title: 'Access test', body: 'Body text.', lang: 'en' };
  const conv = noChat ? 1 : (await customer('I want to talk to a person')).id;
  const cases = [
    // [method, path, who, expected status or list]
    ['GET', `/api/conversations/${conv}`, 'author', [403]],
    ['GET', `/api/conversations/${conv}`, 'agent', noChat ? [200, 404] : [200]],
    ['GET', `/api/conversations/${conv}`, 'admin', noChat ? [200, 404] : [200]],
    ['GET', `/api/conversations/${conv}`, null, [401]],
    ['POST', '/api/articles', 'agent', [403]],
    ['PUT', `/api/articles/${article.id}`, 'agent', [403]],
    ['DELETE', '/api/articles/returns-how-to', 'agent', [403]],
    ['POST', '/api/articles', 'author', [200, 201]],
    ['PUT', `/api/articles/${article.id}`, 'admin', [200, 201]],
    ['DELETE', `/api/articles/${article.id}`, 'author', [200, 204]],
    ['GET', '/api/stats', null, [401]],
  ];
  for (const [method, path, who, want] of cases) {
    const body = method === 'POST' || method === 'PUT' ? article : undefined;
    const r = await api(method, path, who ? tokens[who] : null, body);
    assert.ok(want.includes(r.status), `${method} ${path} as ${who}: ${r.status} ${r.text}`);
  }
  if (noChat) return;
  // An author on /agent: forbidden, closed with 1008.
  const c = await connect(`${srv.wsUrl}/agent`);
  c.send({ type: 'auth', token: tokens.author });
  assert.equal((await c.next((f) => f.type === 'error')).code, 'forbidden');
  assert.equal((await c.whenClosed()).code, 1008);
  // An agent may not write to or close a chat that is not theirs.
  const ag = await connect(`${srv.wsUrl}/agent`);
  ag.send({ type: 'auth', token: tokens.agent });
  await ag.next((f) => f.type === 'ready');
  ag.send({ type: 'message', conversation: conv, id: 'x1', text: 'hi' });
  assert.equal((await ag.next((f) => f.type === 'error')).code, 'not_assigned');
  ag.send({ type: 'close', conversation: conv, disposition: 'spam' });
  assert.equal((await ag.next((f) => f.type === 'error')).code, 'not_assigned');
  ag.close();
});

test('a removed account\'s token is refused when replayed', async (t) => {
  const token = await addUser(srv.db, 'temp', 'agent');
  assert.equal((await api('GET', '/api/stats', token)).status, 200);
  const r = await runCaredesk(['user', 'remove', 'temp', '--db', srv.db]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await api('GET', '/api/stats', token)).status, 401);
  if (noChat) return;
  const c = await connect(`${srv.wsUrl}/agent`);
  c.send({ type: 'auth', token });
  assert.ok(['bad_token', 'throttled'].includes((await c.next((f) => f.type === 'error')).code));
  assert.equal((await c.whenClosed()).code, 1008);
});

test('tokens are stored only as hashes', async (t) => {
  const conv = noChat ? null : await customer('where is my order?');
  if (conv) conv.c.close();
  // Durable before visible: the reply came after the group commit, so the customer's message
  // is in the database files now; the check waits for it rather than for a fixed time.
  const read = () => [srv.db, `${srv.db}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
  const stored = (data) => data.some((d) => d.includes(Buffer.from('where is my order?')));
  if (conv) await waitFor(() => stored(read()));
  const files = read();
  if (conv) assert.ok(stored(files), 'the customer message reached the database files');
  const secrets = [tokens.agent, tokens.author, tokens.admin, ...(conv ? [conv.token] : [])];
  for (const secret of secrets) {
    for (const data of files) {
      assert.ok(!data.includes(Buffer.from(secret, 'ascii')), 'a token is stored in hex');
      assert.ok(!data.includes(Buffer.from(secret, 'hex')), 'a token is stored raw');
    }
  }
});

test('admin and author actions are in the audit log', async (t) => {
  if (!hasSqliteCli()) return t.skip('no sqlite3 CLI to read the events table');
  const article = { id: 'audit-test', title: 'Audit test', body: 'First.', lang: 'en' };
  assert.ok([200, 201].includes((await api('POST', '/api/articles', tokens.author, article)).status));
  assert.ok([200, 201].includes((await api('PUT', `/api/articles/${article.id}`, tokens.admin,
    { ...article, body: 'Second.' })).status));
  assert.ok([200, 204].includes((await api('DELETE', `/api/articles/${article.id}`, tokens.author))
    .status));
  const r = await runCaredesk(['erase', '--email', 'nobody@example.com', '--db', srv.db]);
  assert.equal(r.code, 0, r.stderr);
  const users = Object.fromEntries(sqlite(srv.db, 'SELECT id, name FROM users').map((u) => [u.name, u.id]));
  const events = sqlite(srv.db, 'SELECT kind, user_id, detail FROM events ORDER BY id');
  const has = (kind, userId, detail) => events.some((e) => e.kind === kind
    && (userId === undefined || e.user_id === userId)
    && (!detail || String(e.detail).includes(detail)));
  assert.ok(has('article_create', users.ada, 'audit-test'), JSON.stringify(events));
  assert.ok(has('article_update', users.grace, 'audit-test'));
  assert.ok(has('article_delete', users.ada, 'audit-test'));
  assert.ok(has('user_add', users.alan) && has('user_add', users.grace));
  assert.ok(has('user_remove'));
  assert.ok(has('erase'));
});

test('an admin reading a transcript is in the audit log', async (t) => {
  if (!hasSqliteCli() || noChat) return t.skip('no sqlite3 CLI or no chat module');
  const conv = await customer('where is my order?');
  conv.c.close();
  const before = sqlite(srv.db, 'SELECT count(*) AS n FROM events')[0].n;
  assert.equal((await api('GET', `/api/conversations/${conv.id}`, tokens.admin)).status, 200);
  const after = sqlite(srv.db, 'SELECT count(*) AS n FROM events')[0].n;
  assert.ok(after > before);
});

test('origin allow-list holds against look-alike origins, on /chat and /agent', async () => {
  const refused = ['https://shop.example.evil', 'https://evil.example', 'null',
    'http://shop.example', 'https://shop.example:8443', 'https://xshop.example',
    'https://shop.example@evil.example', 'https://evil.example/https://shop.example'];
  for (const path of ['/chat', '/agent']) {
    const ok = await connect(`${srv.wsUrl}${path}`, { origin: ALLOWED });
    ok.close();
    for (const origin of refused) {
      await assert.rejects(connect(`${srv.wsUrl}${path}`, { origin }), undefined,
        `${path} accepted Origin ${origin}`);
    }
  }
});

test('security headers on pages, API answers and errors', async () => {
  const paths = [['GET', '/'], ['GET', '/kb/returns-how-to'], ['GET', '/api/search?q=return'],
    ['GET', '/healthz'], ['GET', '/nope'], ['GET', '/api/stats'], ['POST', '/'],
    ['GET', '/api/conversations/1']];
  for (const [method, path] of paths) {
    const r = await fetch(srv.url + path, { method });
    await r.text();
    const h = r.headers;
    assert.equal(h.get('x-content-type-options'), 'nosniff', `${method} ${path}`);
    assert.ok(h.get('content-security-policy'), `${method} ${path}: no CSP`);
    assert.ok(/frame-ancestors/.test(h.get('content-security-policy')) || h.get('x-frame-options'),
      `${method} ${path}: can be framed`);
    assert.ok(h.get('referrer-policy'), `${method} ${path}: no Referrer-Policy`);
    assert.ok(!/^\s*$/.test(h.get('content-type') || 'x'));
    assert.equal(h.get('access-control-allow-origin'), null, `${method} ${path}: CORS open`);
  }
});

test('repeated bad tokens are throttled on /agent and /chat, even a good one then', async (t) => {
  if (noChat) return t.skip('no chat module');
  // A server of its own: the throttle is per address and this one is 127.0.0.1.
  const own = await startServer({ ...fixtures, quiet: true });
  try {
    const good = await addUser(own.db, 'tina', 'agent');
    let throttled = false;
    // The answer to an auth frame: an error code, or "closed" for a 1008 close without one.
    const authAnswer = async (token) => {
      const c = await connect(`${own.wsUrl}/agent`);
      c.send({ type: 'auth', token });
      const f = await Promise.race([c.next((x) => x.type === 'error' || x.type === 'ready'),
        c.whenClosed().then((x) => ({ type: 'closed', code: x.code }))]);
      if (f.type === 'ready') return 'ready';
      assert.equal((await c.whenClosed()).code, 1008);
      return f.type === 'closed' ? 'closed' : f.code;
    };
    let answer = '';
    for (let i = 0; i < 12 && answer !== 'throttled' && answer !== 'closed'; i++) {
      answer = await authAnswer('f'.repeat(64));
      assert.notEqual(answer, 'ready');
    }
    assert.ok(['throttled', 'closed'].includes(answer), 'twelve bad agent tokens never throttled');
    assert.ok(['throttled', 'closed'].includes(await authAnswer(good)), 'a good token got in');
    // The customer side of the same address: refused too, a good token included.
    const cust = await connect(`${own.wsUrl}/chat`);
    cust.send({ type: 'hello', token: 'e'.repeat(64) });
    const f = await Promise.race([cust.next((x) => x.type === 'welcome' || x.type === 'error'),
      cust.whenClosed().then((x) => ({ type: 'closed', code: x.code }))]);
    assert.ok(f.type === 'closed' ? f.code === 1008 : f.code === 'throttled', JSON.stringify(f));
  } finally {
    await own.stop();
  }
});
