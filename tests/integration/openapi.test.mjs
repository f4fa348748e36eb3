// GET /api/openapi.json against the real server: the document is valid OpenAPI 3.1 in shape,
// names every route api.c and server.c serve, and every operation's real responses (success
// and errors, for each role that matters) validate against its schemas with ajv (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1). A route, field or status added without the document
// fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, fixtures, addUser } from './lib/server.mjs';
import { openCustomer, ask } from './lib/client.mjs';
import { rest } from './lib/rest.mjs';
import { sleep } from './lib/wait.mjs';

let srv;
let doc;
let ajv;
const tokens = {};
const covered = new Set(); // "METHOD PATH-TEMPLATE STATUS"

before(async () => {
  // A webhook endpoint nothing listens on: article.published deliveries fail fast, so that
  // the deliveries routes have rows to show and redeliver.
  srv = await startServer({
    ...fixtures,
    args: ['--rate-limit', '0', '--webhook-url', 'http://127.0.0.1:9/hooks', '--webhook-secret', 's',
      '--webhook-events', 'article.published', '--webhook-retry-base-ms', '50', '--webhook-max-age', '1'],
  });
  for (const [name, role] of [['Ana', 'agent'], ['Ada', 'author'], ['Root', 'admin'], ['Sue', 'supervisor']]) {
    tokens[role] = await addUser(srv.db, name, role, 'general,orders');
  }
  const res = await fetch(`${srv.url}/api/openapi.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  doc = await res.json();
  ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ ...doc, $id: 'caredesk-openapi' });
});
after(async () => { await srv.stop(); });

// The operation of a concrete path: the path template whose segments match.
function template(path) {
  const segs = path.split('?')[0].split('/');
  for (const t of Object.keys(doc.paths)) {
    const ts = t.split('/');
    if (ts.length === segs.length && ts.every((s, i) => s.startsWith('{') || s === segs[i])) return t;
  }
  return null;
}

// Each operation of the document, as [path template, method (lower case), operation].
function* operations() {
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) if (m !== 'parameters') yield [p, m, op];
  }
}

const ptr = (s) => s.replaceAll('~', '~0').replaceAll('/', '~1');

// Calls the server and validates the response against the document.
async function call(method, path, { token, body, expect } = {}) {
  const res = await rest(srv.url, method, path, { token, body });
  const text = res.text;
  if (expect !== undefined) assert.equal(res.status, expect, `${method} ${path}: ${text}`);
  const t = template(path);
  assert.ok(t, `${path} is in the document`);
  const op = doc.paths[t][method.toLowerCase()];
  assert.ok(op, `${method} ${t} is in the document`);
  const response = op.responses[String(res.status)];
  assert.ok(response, `${method} ${t} documents status ${res.status}`);
  const type = (res.headers.get('content-type') || '').split(';')[0];
  const media = response.content?.[type];
  assert.ok(media, `${method} ${t} ${res.status} documents ${type}`);
  if (type === 'application/json') {
    const where = `caredesk-openapi#/paths/${ptr(t)}/${method.toLowerCase()}/responses/${res.status}`
      + `/content/${ptr(type)}/schema`;
    const validate = ajv.getSchema(where);
    assert.ok(validate, `schema ${where}`);
    const json = JSON.parse(text);
    assert.ok(validate(json), `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}\n${text}`);
  }
  covered.add(`${method} ${t} ${res.status}`);
  return { status: res.status, text, json: type === 'application/json' ? JSON.parse(text) : null };
}

// Makes the calls of rows in order, each [method, path, role (a key of tokens; null: no
// token), the status it must answer, a JSON body (optional)].
async function callAll(rows) {
  for (const [method, path, role, expect, body] of rows) {
    await call(method, path, { token: role ? tokens[role] : undefined, body, expect });
  }
}

test('the document is OpenAPI 3.1 and lists every route with its roles', () => {
  assert.equal(doc.openapi, '3.1.0');
  const routes = [...operations()].map(([p, m]) => `${m.toUpperCase()} ${p}`);
  // The routes of api.c's dispatch and server.c's own (healthz, metrics).
  assert.deepEqual(routes.sort(), [
    'DELETE /api/articles/{id}', 'GET /api/articles', 'GET /api/articles/{id}',
    'GET /api/articles/{id}/revisions', 'GET /api/articles/{id}/revisions/{n}', 'GET /api/ask',
    'GET /api/conversations/{id}', 'GET /api/export', 'GET /api/intents/check', 'GET /api/me', 'GET /api/openapi.json', 'GET /api/queues',
    'GET /api/search', 'GET /api/stats', 'GET /api/unanswered', 'GET /kb/{id}',
    'GET /api/webhooks/deliveries', 'GET /api/webhooks/deliveries/{id}', 'GET /healthz',
    'GET /metrics', 'POST /api/articles', 'POST /api/erase', 'POST /api/learn', 'POST /api/webhooks/deliveries/{id}/redeliver',
    'PUT /api/articles/{id}',
    'GET /api/report', 'GET /api/qa/rubric', 'GET /api/qa/samples', 'POST /api/qa/samples',
    'GET /api/qa/audits', 'POST /api/qa/audits', 'GET /api/qa/calibration', 'GET /api/qa/scores',
    'GET /api/status-updates',
  ].sort());
  for (const [, m, op] of operations()) {
    assert.ok(Array.isArray(op['x-caredesk-roles']), `${m} roles`);
    assert.ok(op.operationId && op.summary && op.responses);
    if (op['x-caredesk-roles'].length) assert.ok(op.responses['401'] && op.responses['403']);
  }
  // Every $ref resolves.
  const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[A-Za-z]+"/g);
  for (const r of refs) assert.ok(doc.components.schemas[r.slice(22, -1)], r);
});

test('real responses of every operation validate against the document', async () => {
  // Public routes.
  await callAll([
    ['GET', '/api/openapi.json', null, 200],
    ['GET', '/healthz', null, 200],
    ['GET', '/metrics', null, 200],
    ['GET', '/api/search?q=where%20is%20my%20order', null, 200],
    ['GET', '/api/search?q=return&lang=en&limit=2', null, 200],
    ['GET', '/api/search', null, 400],
    ['GET', '/api/search?q=x&limit=99', null, 400],
    ['GET', '/api/search?q=x&lang=english', null, 400],
  ]);

  // Accounts and roles.
  for (const role of ['agent', 'author', 'admin']) await call('GET', '/api/me', { token: tokens[role], expect: 200 });
  await call('GET', '/api/me', { expect: 401 });
  await call('GET', '/api/me', { token: 'not-a-token', expect: 401 });
  await callAll([
    ['GET', '/api/queues', 'agent', 200],
    ['GET', '/api/queues', 'author', 403],
  ]);

  // Articles: create, list, read, update (a revision), revisions, page, delete.
  const article = {
    id: 'openapi-zebra', title: 'Zebra grooming', body: 'Brush **zebras** weekly.\n\n- gently\n- often\n',
    tags: ['care'], questions: ['how do I brush a zebra'],
  };
  await callAll([
    ['POST', '/api/articles', 'author', 201, article],
    ['POST', '/api/articles', 'author', 409, article],
    ['POST', '/api/articles', 'author', 400, { id: 'x' }],
    ['POST', '/api/articles', 'agent', 403, article],
    ['GET', '/api/articles', 'author', 200],
    ['GET', '/api/articles?q=zebra&status=published&limit=5', 'admin', 200],
    ['GET', '/api/articles?status=nope', 'admin', 400],
    ['GET', '/api/articles/openapi-zebra', 'author', 200],
    ['GET', '/api/articles/no-such-article', 'author', 404],
    ['GET', '/api/articles/BAD%20ID', 'author', 400],
  ]);
  await call('PUT', '/api/articles/openapi-zebra', {
    token: tokens.admin, body: { ...article, body: 'Brush zebras daily.', status: 'draft' }, expect: 200,
  });
  await call('PUT', '/api/articles/openapi-new', {
    token: tokens.author, body: { title: 'New one', body: 'Text.', lang: 'en', published: true }, expect: 201,
  });
  await callAll([
    ['PUT', '/api/articles/openapi-new', 'author', 400, { id: 'other', title: 't', body: 'b' }],
    ['GET', '/api/articles/openapi-zebra/revisions', 'author', 200],
    ['GET', '/api/articles/no-such-article/revisions', 'author', 404],
    ['GET', '/api/articles/openapi-zebra/revisions/1', 'author', 200],
    ['GET', '/api/articles/openapi-zebra/revisions/2', 'author', 200],
    ['GET', '/api/articles/openapi-zebra/revisions/99', 'author', 404],
    ['GET', '/api/articles/openapi-zebra/revisions/x', 'author', 400],
    ['GET', '/kb/openapi-new', null, 200],
    ['GET', '/kb/openapi-zebra', null, 404], // a draft now
    ['DELETE', '/api/articles/openapi-new', 'author', 200],
    ['DELETE', '/api/articles/openapi-new', 'author', 404],
  ]);

  // The intents report; the bot, learning, unanswered questions.
  await callAll([
    ['GET', '/api/intents/check', 'author', 200],
    ['GET', '/api/intents/check', 'agent', 403],
    ['GET', '/api/ask?q=where%20is%20my%20order', 'author', 200],
    ['GET', '/api/ask?q=I%20want%20a%20person&lang=en', 'admin', 200],
    ['GET', '/api/ask', 'author', 400],
    ['GET', '/api/ask?q=x&lang=e', 'author', 400],
    ['GET', '/api/ask?q=x', 'agent', 403],
  ]);
  const c = await openCustomer(srv, { type: 'hello', lang: 'en', name: 'Sam', email: 'sam@example.com' });
  const welcome = c.welcome;
  assert.equal(welcome.type, 'welcome');
  await ask(c, 'm1', 'how do I repaint a vintage zeppelin hangar');
  await ask(c, 'm2', 'my card 4242 4242 4242 4242 was charged twice');
  c.close();
  const un = await call('GET', '/api/unanswered', { token: tokens.author, expect: 200 });
  await callAll([
    ['GET', '/api/unanswered?since=0&limit=5', 'admin', 200],
    ['GET', '/api/unanswered?limit=0', 'admin', 400],
  ]);
  const question = un.json.questions[0]?.text || 'how do I repaint a vintage zeppelin hangar';
  await callAll([
    ['POST', '/api/learn', 'author', 200, { question, article: 'openapi-zebra' }],
    ['POST', '/api/learn', 'author', 404, { question, article: 'no-such-article' }],
    ['POST', '/api/learn', 'author', 400, { question: '' }],
  ]);

  // Conversations and stats.
  await callAll([
    ['GET', `/api/conversations/${welcome.conversation}`, 'agent', 200],
    ['GET', '/api/conversations/999999', 'admin', 404],
    ['GET', '/api/conversations/abc', 'admin', 400],
    ['GET', `/api/conversations/${welcome.conversation}`, 'author', 403],
    ['GET', '/api/stats', 'agent', 200],
    ['GET', '/api/stats?since=1&until=4000000000', 'author', 200],
    ['GET', '/api/stats?since=5&until=4', 'admin', 400],
  ]);

  // Data-subject requests.
  await callAll([
    ['GET', `/api/export?conversation=${welcome.conversation}`, 'admin', 200],
    ['GET', '/api/export?email=sam@example.com', 'admin', 200],
    ['GET', '/api/export?conversation=999999', 'admin', 404],
    ['GET', '/api/export', 'admin', 400],
    ['GET', '/api/export?email=sam@example.com', 'agent', 403],
    ['POST', '/api/erase', 'admin', 200, { email: 'nobody@example.com' }],
    ['POST', '/api/erase', 'admin', 400, {}],
  ]);

  // Webhook deliveries: the article published above failed (nothing listens on port 9).
  let failed;
  for (let i = 0; i < 100 && !failed; i++) {
    const r = await call('GET', '/api/webhooks/deliveries?status=failed&limit=10', { token: tokens.admin, expect: 200 });
    failed = r.json.deliveries[0];
    if (!failed) await sleep(100);
  }
  assert.ok(failed, 'a failed delivery');
  await callAll([
    ['GET', '/api/webhooks/deliveries', 'admin', 200],
    ['GET', '/api/webhooks/deliveries?status=nope', 'admin', 400],
    ['GET', '/api/webhooks/deliveries', 'author', 403],
    ['GET', `/api/webhooks/deliveries/${failed.id}`, 'admin', 200],
    ['GET', '/api/webhooks/deliveries/999999', 'admin', 404],
    ['GET', '/api/webhooks/deliveries/x', 'admin', 400],
    ['POST', `/api/webhooks/deliveries/${failed.id}/redeliver`, 'admin', 200],
    ['POST', `/api/webhooks/deliveries/${failed.id}/redeliver`, 'admin', 409],
    ['POST', '/api/webhooks/deliveries/999999/redeliver', 'admin', 404],
  ]);

  // The team routes. This server has no QA rubric: the QA routes answer 503, which is
  // what is validated of them here (their bodies are open objects in the document).
  await callAll([
    ['GET', '/api/report', 'admin', 200],
    ['GET', '/api/report?format=md', 'supervisor', 200],
    ['GET', '/api/report?format=csv&week=2026-W49', 'admin', 200],
    ['GET', '/api/report?format=pdf', 'admin', 400],
    ['GET', '/api/report', 'agent', 403],
  ]);
  for (const [m, path] of [['GET', '/api/qa/rubric'], ['GET', '/api/qa/samples'], ['POST', '/api/qa/samples'],
    ['GET', '/api/qa/audits'], ['POST', '/api/qa/audits'], ['GET', '/api/qa/calibration'], ['GET', '/api/qa/scores']]) {
    await call(m, path, { token: tokens.supervisor, body: m === 'POST' ? {} : undefined, expect: 503 });
  }
  await callAll([
    ['GET', '/api/status-updates?tracking_id=INC-2026-1206-0042', 'agent', 200],
    ['GET', '/api/status-updates', 'agent', 400],
  ]);

  // Every operation was exercised: with its success status, but for the QA routes (above).
  for (const [p, m, op] of operations()) {
    const okStatus = p.startsWith('/api/qa/') ? '503' : Object.keys(op.responses).find((s) => s.startsWith('2'));
    assert.ok(covered.has(`${m.toUpperCase()} ${p} ${okStatus}`), `${m.toUpperCase()} ${p} ${okStatus} was validated`);
  }
});
