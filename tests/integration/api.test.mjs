// REST: Bearer tokens by role (401/403), bad JSON and missing fields (400
// naming the problem), articles (searchable at once, revisions kept),
// conversations, stats, article pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, fixtures, addUser } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { rest } from './lib/rest.mjs';

let srv;
let health;
const tokens = {};


const api = (method, path, opts) => rest(srv.url, method, path, opts);

before(async () => {
  srv = await startServer({ ...fixtures });
  tokens.author = await addUser(srv.db, 'ada', 'author');
  tokens.agent = await addUser(srv.db, 'alan', 'agent');
  tokens.admin = await addUser(srv.db, 'grace', 'admin');
  health = await (await fetch(`${srv.url}/healthz`)).json();
});

after(async () => { if (srv) await srv.stop(); });

// First: later tests send bad tokens until this address is throttled.
test('intents report: authors and admins read where the out-of-scope threshold landed', async () => {
  const r = await api('GET', '/api/intents/check', { token: tokens.author });
  assert.equal(r.status, 200, r.text);
  assert.equal(typeof r.json.intents, 'number');
  assert.ok(r.json.intents > 0);
  const oos = r.json.out_of_scope;
  assert.equal(oos.fitted, true);
  assert.ok(oos.in_scope_kept > 0 && oos.in_scope_kept <= 1);
  assert.ok(oos.out_of_scope_caught > 0 && oos.out_of_scope_caught <= 1);
  assert.match(oos.why, /P\(in scope\)/);
  for (const k of ['too_few_examples', 'confused_pairs', 'misread_examples', 'per_intent'])
    assert.ok(Array.isArray(r.json[k]), k);
  assert.equal((await api('GET', '/api/intents/check', { token: tokens.admin })).status, 200);
  assert.equal((await api('GET', '/api/intents/check', { token: tokens.agent })).status, 403);
  assert.equal((await api('GET', '/api/intents/check')).status, 401);
  const post = await api('POST', '/api/intents/check', { token: tokens.author, body: {} });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET');
});

test('missing or wrong token: 401 with WWW-Authenticate', async () => {
  for (const path of ['/api/stats', '/api/conversations/1', '/api/articles/returns']) {
    const none = await api('GET', path);
    assert.equal(none.status, 401, path);
    assert.equal(none.json.error, 'missing_token');
    assert.match(none.headers.get('www-authenticate'), /^Bearer/);
  }
  // Three bad tokens: under the throttle (5 a minute per address).
  const bad = await api('GET', '/api/stats', { token: 'f'.repeat(64) });
  assert.equal(bad.status, 401);
  assert.equal(bad.json.error, 'bad_token');
  const truncated = await api('GET', '/api/conversations/1', { token: tokens.admin.slice(0, 63) });
  assert.equal(truncated.status, 401);
  const replayedOther = await api('GET', '/api/stats', { token: tokens.admin.replace(/.$/, 'x') });
  assert.equal(replayedOther.status, 401);
  const basic = await api('GET', '/api/stats', { headers: { authorization: 'Basic YTpi' } });
  assert.equal(basic.status, 401);
});

test('wrong role: 403 (author cannot read transcripts, agent cannot edit articles)', async () => {
  const r1 = await api('GET', '/api/conversations/1', { token: tokens.author });
  assert.equal(r1.status, 403);
  assert.equal(r1.json.error, 'forbidden');
  const r2 = await api('PUT', '/api/articles/x', {
    token: tokens.agent, body: { title: 't', body: 'b' },
  });
  assert.equal(r2.status, 403);
  const r3 = await api('DELETE', '/api/articles/x', { token: tokens.agent });
  assert.equal(r3.status, 403);
});

test('stats: JSON aggregates for agents, authors and admins', async () => {
  for (const role of ['agent', 'author', 'admin']) {
    const r = await api('GET', '/api/stats', { token: tokens[role] });
    assert.equal(r.status, 200, role);
    for (const k of ['conversations', 'bot_resolved', 'handoffs', 'picked_up',
      'picked_within_target', 'deflection_rate', 'escalation_rate', 'handoffs_by_queue',
      'pickup_within_target', 'median_wait_s', 'csat', 'top_drivers', 'unanswered', 'live']) {
      assert.ok(k in r.json, k);
    }
  }
  const bad = await api('GET', '/api/stats?since=abc', { token: tokens.admin });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, 'bad_range');
});

// The response of GET /api/stats as docs/web.md's table of REST routes states it: every field
// the table names is in a real response, with the shape it gives, and the response has no
// top-level field the table does not name, so the two cannot drift apart.
test('stats: the response has exactly the fields docs/web.md names', async () => {
  const doc = readFileSync(new URL('../../docs/web.md', import.meta.url), 'utf8');
  const row = doc.split('\n').find((l) => l.startsWith('| `GET /api/stats'));
  assert.ok(row, 'docs/web.md has no row for GET /api/stats');
  const response = row.split(' | ')[3];
  const [contract, live] = response.split('For the live tiles');
  const shape = contract.match(/`(\{.*\})`/)[1];
  // Top-level names: the quoted words outside the [{...}] of the lists.
  const top = [...shape.replace(/\[\{[^\]]*\}\]/g, '').matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
  const lists = [...shape.matchAll(/"([a-z_]+)":\[\{([^\]]*)\}\]/g)]
    .map((m) => [m[1], [...m[2].matchAll(/"([a-z_]+)"/g)].map((x) => x[1])]);
  const optional = [...live.matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
  assert.ok(top.length >= 15 && lists.length >= 3, `could not read the table: ${response}`);
  for (const [name] of lists) top.push(name);
  // A conversation, handed off and answered, so that the lists have items.
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello', lang: 'en' });
  await c.next((f) => f.type === 'welcome');
  c.send({ type: 'message', id: 'm1', text: 'I want to talk to a person' });
  await c.next((f) => f.type === 'reply' || f.type === 'ack');
  c.close();
  const r = await api('GET', '/api/stats', { token: tokens.agent });
  assert.equal(r.status, 200);
  for (const name of top) assert.ok(name in r.json, `docs/web.md names "${name}"; the response has no such field`);
  for (const name of Object.keys(r.json)) {
    assert.ok(top.includes(name) || optional.includes(name),
      `the response has "${name}", which docs/web.md does not name`);
  }
  for (const [name, keys] of lists) {
    assert.ok(Array.isArray(r.json[name]), name);
    for (const item of r.json[name]) assert.deepEqual(Object.keys(item).sort(), [...keys].sort(), name);
  }
  assert.ok(r.json.handoffs_by_queue.length >= 1, JSON.stringify(r.json));
});

test('me, queues and ask', async () => {
  const me = await api('GET', '/api/me', { token: tokens.author });
  assert.equal(me.status, 200);
  assert.deepEqual([me.json.name, me.json.role], ['ada', 'author']);
  const queues = await api('GET', '/api/queues', { token: tokens.agent });
  assert.equal(queues.status, 200);
  assert.ok(queues.json.queues.includes('general'));
  const q403 = await api('GET', '/api/queues', { token: tokens.author });
  assert.equal(q403.status, 403);
  const a = await api('GET', `/api/ask?q=${encodeURIComponent('how do I reset my password')}`,
    { token: tokens.author });
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.action, 'answer');
  assert.equal(a.json.intent, 'password_reset');
  assert.equal(typeof a.json.text, 'string');
  const a400 = await api('GET', '/api/ask', { token: tokens.author });
  assert.equal(a400.status, 400);
  // One language-tag rule for the ask and search routes: a tag like pt-BR is taken, and
  // anything else is refused, where the ask route used to decide with it.
  const aLang = await api('GET', '/api/ask?q=hola&lang=es-MX', { token: tokens.author });
  assert.equal(aLang.status, 200, aLang.text);
  for (const [route, token] of [['ask', tokens.author], ['search', undefined]]) {
    for (const bad of ['english', 'e', 'es--', '12']) {
      const r = await api('GET', `/api/${route}?q=hello&lang=${bad}`, { token });
      assert.equal(r.status, 400, `${route} ${bad}`);
      assert.equal(r.json.error, 'bad_lang');
    }
  }
  const a403 = await api('GET', '/api/ask?q=x', { token: tokens.agent });
  assert.equal(a403.status, 403);
});

test('conversations: 404 for an unknown id, 400 for a bad one', async () => {
  const r = await api('GET', '/api/conversations/999999', { token: tokens.agent });
  assert.equal(r.status, 404);
  const b = await api('GET', '/api/conversations/abc', { token: tokens.admin });
  assert.equal(b.status, 400);
});

test('unknown routes: 404; wrong method: 405 with Allow', async () => {
  const r = await api('GET', '/api/nothing-here');
  assert.equal(r.status, 404);
  const m = await api('PATCH', '/api/stats', { token: tokens.admin });
  assert.equal(m.status, 405);
  assert.equal(m.headers.get('allow'), 'GET');
  // One route table: every route checks its method before its roles, the ones that used to
  // take any method included.
  const me = await api('POST', '/api/me', { token: tokens.admin, body: {} });
  assert.equal(me.status, 405);
  assert.equal(me.headers.get('allow'), 'GET');
  const put = await api('PUT', '/api/articles', { token: tokens.author, body: {} });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET, POST');
  assert.equal((await api('DELETE', '/api/stats')).status, 405); // before any token check
});

test('bad JSON and bad fields: 400 naming the problem, nothing changed', async (t) => {
  if (!health.kb) return t.skip('this build has no knowledge base');
  const cases = [
    [{ raw: '{"title": "x", "body": ' }, 'bad_json', /line 1/],
    [{ raw: '[1,2]' }, 'bad_json', /object/],
    [{ body: { body: 'text' } }, 'missing_field', /title/],
    [{ body: { title: 'T' } }, 'missing_field', /body/],
    [{ body: { title: 5, body: 'b' } }, 'bad_field', /title/],
    [{ body: { title: 'T', body: 'b', tags: 'x' } }, 'bad_field', /tags/],
    [{ body: { title: 'T', body: 'b', published: 'yes' } }, 'bad_field', /published/],
    [{ body: { id: 'other', title: 'T', body: 'b' } }, 'bad_field', /id/],
  ];
  for (const [opts, code, re] of cases) {
    const r = await api('PUT', '/api/articles/bad-input-test', { token: tokens.author, ...opts });
    assert.equal(r.status, 400, JSON.stringify(opts));
    assert.equal(r.json.error, code, JSON.stringify(opts));
    assert.match(r.json.message, re);
  }
  const badId = await api('PUT', '/api/articles/Bad%20Id', {
    token: tokens.author, body: { title: 'T', body: 'b' },
  });
  assert.equal(badId.status, 400);
  const gone = await api('GET', '/api/articles/bad-input-test', { token: tokens.author });
  assert.equal(gone.status, 404);
});

test('wrong JSON types in a body: 400 naming the field, the type it must have and the one it got', async (t) => {
  if (!health.kb) return t.skip('this build has no knowledge base');
  const cases = [
    ['PUT', '/api/articles/type-test', { raw: '[]' }, 'bad_json', /JSON object \(got an array\)/],
    ['PUT', '/api/articles/type-test', { raw: '"text"' }, 'bad_json', /JSON object \(got a string\)/],
    ['PUT', '/api/articles/type-test', { body: { title: 5, body: 'b' } }, 'bad_field',
      /'title' must be a string \(got an integer\)/],
    ['POST', '/api/learn', { raw: '[]' }, 'bad_json', /JSON object \(got an array\)/],
    ['POST', '/api/learn', { raw: '7' }, 'bad_json', /JSON object \(got an integer\)/],
    ['POST', '/api/learn', { body: { question: 5, article: 'returns' } }, 'bad_field',
      /'question' must be a string \(got an integer\)/],
    ['POST', '/api/learn', { body: { question: 'q', article: ['returns'] } }, 'bad_field',
      /'article' must be a string \(got an array\)/],
  ];
  for (const [method, path, opts, code, re] of cases) {
    const r = await api(method, path, { token: tokens.author, ...opts });
    assert.equal(r.status, 400, JSON.stringify(opts));
    assert.equal(r.json.error, code, JSON.stringify(opts));
    assert.doesNotMatch(r.json.message, /-1/);
    assert.match(r.json.message, re);
  }
  assert.equal((await api('GET', '/api/articles/type-test', { token: tokens.author })).status, 404);
});

test('articles: create, searchable at once, update keeps a revision, page, delete',
  async (t) => {
    if (!health.kb) return t.skip('this build has no knowledge base');
    const id = 'zebra-stripes-care';
    const body = {
      title: 'Caring for zebra stripes',
      body: 'Wash zebra stripes gently with cold water.\n\n- Use **mild** soap\n- Dry flat\n',
      tags: ['care'],
      questions: ['how do I wash zebra stripes'],
    };
    const created = await api('POST', '/api/articles', {
      token: tokens.author, body: { id, ...body },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.id, id);
    const again = await api('POST', '/api/articles', { token: tokens.author, body: { id, ...body } });
    assert.equal(again.status, 409);

    const found = await api('GET', `/api/search?q=${encodeURIComponent('wash zebra stripes')}`);
    assert.equal(found.status, 200);
    assert.equal(found.json.hits[0].id, id);
    assert.equal(found.json.hits[0].url, `/kb/${id}`);

    const rev1 = created.json.revision;
    const updated = await api('PUT', `/api/articles/${id}`, {
      token: tokens.admin, body: { ...body, body: 'Zebra stripes: rinse in cold water only.' },
    });
    assert.equal(updated.status, 200, updated.text);
    assert.ok(updated.json.revision > rev1, 'revision increases');
    const got = await api('GET', `/api/articles/${id}`, { token: tokens.author });
    assert.match(got.json.body, /rinse in cold water/);

    const page = await fetch(`${srv.url}/kb/${id}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const html = await page.text();
    assert.match(html, /<h1>Caring for zebra stripes<\/h1>/);
    assert.match(html, /rinse in cold water/);

    const del = await api('DELETE', `/api/articles/${id}`, { token: tokens.author });
    assert.equal(del.status, 200);
    const after404 = await fetch(`${srv.url}/kb/${id}`);
    await after404.text();
    assert.equal(after404.status, 404);
    const del2 = await api('DELETE', `/api/articles/${id}`, { token: tokens.author });
    assert.equal(del2.status, 404);
  });

test('articles: list with drafts, search and status filter; revisions newest first',
  async (t) => {
    if (!health.kb) return t.skip('this build has no knowledge base');
    const id = 'list-rev-kettle';
    const base = { title: 'Descaling the Kettle', body: 'Version one.', tags: ['Kitchen'] };
    assert.equal((await api('PUT', `/api/articles/${id}`, {
      token: tokens.author, body: { ...base, published: false },
    })).status, 201);
    const all = await api('GET', '/api/articles', { token: tokens.author });
    assert.equal(all.status, 200, all.text);
    const mine = all.json.articles.find((a) => a.id === id);
    assert.ok(mine, 'the draft is listed');
    assert.equal(mine.status, 'draft');
    assert.equal(mine.published, false);
    assert.equal(mine.title, base.title);
    assert.deepEqual(mine.tags, ['Kitchen']);
    assert.equal(mine.revision, 1);
    assert.ok(all.json.articles.length > 1, 'the fixture articles are listed too');
    const byTag = await api('GET', '/api/articles?q=kitCHEN', { token: tokens.author });
    assert.deepEqual(byTag.json.articles.map((a) => a.id), [id]);
    const wild = await api('GET', '/api/articles?q=%25', { token: tokens.author });
    assert.equal(wild.status, 200);
    assert.ok(!wild.json.articles.some((a) => a.id === id), "'%' is not a wildcard");
    const pub = await api('GET', '/api/articles?status=published', { token: tokens.author });
    assert.ok(!pub.json.articles.some((a) => a.id === id));
    const drafts = await api('GET', '/api/articles?status=draft&limit=5', { token: tokens.author });
    assert.ok(drafts.json.articles.some((a) => a.id === id));
    assert.ok(drafts.json.articles.every((a) => a.status === 'draft'));
    assert.equal((await api('GET', '/api/articles?status=gone', { token: tokens.author })).status, 400);
    assert.equal((await api('GET', '/api/articles?limit=0', { token: tokens.author })).status, 400);
    assert.equal((await api('GET', '/api/articles', { token: tokens.agent })).status, 403);

    for (const v of ['Version two.', 'Version three.']) {
      const r = await api('PUT', `/api/articles/${id}`, { token: tokens.author, body: { ...base, body: v } });
      assert.equal(r.status, 200, r.text);
    }
    const revs = await api('GET', `/api/articles/${id}/revisions`, { token: tokens.author });
    assert.equal(revs.status, 200, revs.text);
    assert.deepEqual(revs.json.revisions.map((r) => [r.revision, r.body]),
      [[3, 'Version three.'], [2, 'Version two.'], [1, 'Version one.']]);
    assert.equal(revs.json.revisions[0].current, true);
    assert.equal(revs.json.revisions[2].status, 'draft');
    const one = await api('GET', `/api/articles/${id}/revisions/1`, { token: tokens.author });
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.body, 'Version one.');
    assert.equal(one.json.revision, 1);
    const cur = await api('GET', `/api/articles/${id}/revisions/3`, { token: tokens.author });
    assert.equal(cur.json.body, 'Version three.');
    assert.equal((await api('GET', `/api/articles/${id}/revisions/9`, { token: tokens.author })).status, 404);
    assert.equal((await api('GET', `/api/articles/${id}/revisions/x`, { token: tokens.author })).status, 400);
    assert.equal((await api('GET', '/api/articles/no-such-thing/revisions', { token: tokens.author })).status, 404);
    assert.equal((await api('GET', `/api/articles/${id}/revisions`, { token: tokens.agent })).status, 403);
    // A deleted article's versions stay readable.
    assert.equal((await api('DELETE', `/api/articles/${id}`, { token: tokens.author })).status, 200);
    const gone = await api('GET', `/api/articles/${id}/revisions`, { token: tokens.author });
    assert.equal(gone.status, 200, gone.text);
    assert.equal(gone.json.revisions[0].body, 'Version three.');
    assert.equal(gone.json.revisions[0].current, false);
  });

test('article pages escape HTML from the article', async (t) => {
  if (!health.kb) return t.skip('this build has no knowledge base');
  const id = 'escape-test';
  const r = await api('PUT', `/api/articles/${id}`, {
    token: tokens.author,
    body: { title: '<script>alert(1)</script>', body: 'Hi <img src=x onerror=alert(1)> [x](javascript:alert(1))' },
  });
  assert.ok(r.status === 200 || r.status === 201, r.text);
  const html = await (await fetch(`${srv.url}/kb/${id}`)).text();
  assert.doesNotMatch(html, /<script>alert/);
  assert.doesNotMatch(html, /<img/);
  assert.doesNotMatch(html, /href="javascript:/);
});

test('search: q is required; any text is just words', async (t) => {
  const none = await api('GET', '/api/search');
  assert.equal(none.status, 400);
  assert.equal(none.json.error, 'missing_q');
  if (!health.kb) return t.skip('this build has no knowledge base');
  for (const q of ['"unterminated', 'NEAR(a b)', '*', 'title:refund', 'a OR AND NOT']) {
    const r = await api('GET', `/api/search?q=${encodeURIComponent(q)}`);
    assert.equal(r.status, 200, q);
    assert.ok(Array.isArray(r.json.hits));
  }
});

test('body over the cap: 413', async () => {
  const big = 'x'.repeat(1100000);
  const r = await api('PUT', '/api/articles/big', { token: tokens.author, raw: big });
  assert.equal(r.status, 413);
});

// Last: it leaves this address throttled.
test('repeated bad tokens are throttled: 429, even for a good token, then', async () => {
  let status = 0;
  for (let i = 0; i < 8 && status !== 429; i++) {
    status = (await api('GET', '/api/stats', { token: `${i}`.padStart(64, 'a') })).status;
  }
  assert.equal(status, 429);
  const good = await api('GET', '/api/stats', { token: tokens.admin });
  assert.equal(good.status, 429);
  assert.equal(good.json.error, 'throttled');
});
