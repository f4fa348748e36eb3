// Data-subject requests against the real server: erasure reaches the bytes of the database
// and its -wal file while the server runs (from the command line and from the admin REST
// route), export by email from both, what they did in the audit log, and clear errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { startServer, runCaredesk, fixtures, addUser } from './lib/server.mjs';
import { connect, openCustomer, ask } from './lib/client.mjs';
import { rest } from './lib/rest.mjs';
import { sqlite, hasSqliteCli } from './lib/sqlite.mjs';
import { sleep } from './lib/wait.mjs';

let srv;
let admin;
let agent;

// A customer who leaves an email and writes secret; returns the conversation id.
async function customer(email, secret) {
  const c = await openCustomer(srv, { type: 'hello', lang: 'en', name: 'Sam', email });
  await ask(c, 'm1', `where is my order? I live at ${secret}`);
  c.close();
  await c.whenClosed();
  return c.welcome.conversation;
}

// Which of needles the database files (the -wal included) hold.
function held(needles) {
  const files = [srv.db, `${srv.db}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
  return needles.filter((n) => files.some((data) => data.includes(Buffer.from(n, 'utf8'))));
}

function events(kind) {
  return sqlite(srv.db, `SELECT kind, user_id, detail FROM events WHERE kind = '${kind}' ORDER BY id`);
}

// A REST call as token; a string body is sent as it is (a malformed one).
function api(method, path, token, body) {
  return rest(srv.url, method, path, typeof body === 'string' ? { token, raw: body } : { token, body });
}

before(async () => {
  srv = await startServer({ ...fixtures, args: ['--rate-limit', '0'] });
  admin = await addUser(srv.db, 'grace', 'admin');
  agent = await addUser(srv.db, 'alan', 'agent');
});

after(async () => { if (srv) await srv.stop(); });

test('caredesk erase --email, while the server runs, leaves nothing in the database or its -wal file', async () => {
  const email = 'erase.cli@example.com';
  await customer(email, '12 Quiet Lane');
  const keep = await customer('keep.me@example.com', '7 Other Road');
  await sleep(300); // the group commit
  assert.deepEqual(held([email, '12 Quiet Lane']), [email, '12 Quiet Lane'], 'the data is there before');
  const r = await runCaredesk(['erase', '--email', email, '--db', srv.db]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /erased 1 conversation of/);
  assert.deepEqual(held([email, '12 Quiet Lane']), []);
  // Only that customer went, and the server goes on serving.
  assert.deepEqual(held(['keep.me@example.com']), ['keep.me@example.com']);
  const more = await customer('next@example.com', '3 New Street');
  assert.ok(more > keep);
});

test('caredesk export --email: every conversation of the customer; errors end with a newline', async () => {
  const email = 'export.cli@example.com';
  const a = await customer(email, '1 First Street');
  const b = await customer(email.toUpperCase(), '2 Second Street');
  await sleep(300);
  const r = await runCaredesk(['export', '--email', email, '--db', srv.db]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.email, email);
  assert.deepEqual(out.conversations.map((c) => c.conversation), [a, b]);
  assert.ok(JSON.stringify(out).includes('2 Second Street'));
  const none = await runCaredesk(['export', '--email', 'nobody@example.com', '--db', srv.db]);
  assert.equal(none.code, 0, none.stderr);
  assert.deepEqual(JSON.parse(none.stdout).conversations, []);
  for (const args of [['--email', 'not-an-address'], ['--conversation', '999999'],
    ['--conversation', 'x'], ['--email', email, '--conversation', '1'], [],
    ['--bogus', '1']]) {
    const e = await runCaredesk(['export', ...args, '--db', srv.db]);
    assert.notEqual(e.code, 0, args.join(' '));
    assert.ok(e.stderr.length > 0 && e.stderr.endsWith('\n'), `${args.join(' ')}: ${JSON.stringify(e.stderr)}`);
    assert.equal(e.stdout, '');
  }
});

test('admin REST: export and erase by email, in the audit log; erasure reaches the -wal file', async (t) => {
  const email = 'erase.rest@example.com';
  const id = await customer(email, '99 Hidden Road');
  await sleep(300);
  // Only an admin may.
  assert.equal((await api('GET', `/api/export?email=${email}`, agent)).status, 403);
  assert.equal((await api('POST', '/api/erase', agent, { email })).status, 403);
  const ex = await api('GET', `/api/export?email=${encodeURIComponent(email)}`, admin);
  assert.equal(ex.status, 200, ex.text);
  assert.deepEqual(ex.json.conversations.map((c) => c.conversation), [id]);
  const one = await api('GET', `/api/export?conversation=${id}`, admin);
  assert.equal(one.status, 200);
  assert.equal(one.json.conversation, id);
  assert.equal((await api('GET', '/api/export?conversation=999999', admin)).status, 404);
  for (const [method, path, body] of [['GET', '/api/export', undefined],
    ['GET', '/api/export?email=nope', undefined], ['GET', '/api/export?conversation=x', undefined],
    ['POST', '/api/erase', {}], ['POST', '/api/erase', { email: 5 }], ['POST', '/api/erase', '[]'],
    ['POST', '/api/erase', { email: 'nope' }]]) {
    const r = await api(method, path, admin, body);
    assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`);
    assert.ok(r.json.message.length > 0);
  }
  assert.deepEqual(held([email]), [email]);
  const er = await api('POST', '/api/erase', admin, { email });
  assert.equal(er.status, 200, er.text);
  assert.equal(er.json.erased, 1);
  assert.deepEqual(held([email, '99 Hidden Road']), []);
  assert.equal((await api('GET', `/api/export?conversation=${id}`, admin)).status, 404);
  if (!hasSqliteCli()) return t.skip('no sqlite3 CLI to read the audit log');
  const adminId = sqlite(srv.db, "SELECT id FROM users WHERE name = 'grace'")[0].id;
  assert.ok(events('export').some((e) => e.user_id === adminId), JSON.stringify(events('export')));
  assert.ok(events('erase').some((e) => e.user_id === adminId && e.detail.includes('"conversations":1')));
  // The audit log does not keep what was erased.
  assert.ok(!events('erase').some((e) => String(e.detail).includes(email)));
});

test('erasing the email of a live conversation ends it for its customer and its agent', async () => {
  const email = 'live@example.com';
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello', lang: 'en', email });
  const w = await c.next((f) => f.type === 'welcome');
  c.send({ type: 'handoff' });
  await c.next((f) => f.type === 'queued');
  const a = await connect(`${srv.wsUrl}/agent`);
  a.send({ type: 'auth', token: agent });
  await a.next((f) => f.type === 'ready');
  a.send({ type: 'claim', conversation: w.conversation });
  await a.next((f) => f.type === 'assigned');
  const er = await api('POST', '/api/erase', admin, { email });
  assert.equal(er.status, 200, er.text);
  assert.equal(er.json.erased, 1);
  await a.next((f) => f.type === 'closed' && f.conversation === w.conversation);
  await c.whenClosed();
  a.close();
  assert.deepEqual(held([email]), []);
});
