// GET /api/openapi.json against the real server: the document is valid OpenAPI 3.1 in shape,
// names every route api.c and server.c serve, and every operation's real responses (success
// and errors, for each role that matters) validate against its schemas with ajv (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1). A route, field or status added without the document
// fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, fixtures, addUser } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { rest } from './lib/rest.mjs';

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

test('the document is OpenAPI 3.1 and lists every route with its roles', () => {
  assert.equal(doc.openapi, '3.1.0');
  const routes = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (m !== 'parameters') routes.push(`${m.toUpperCase()} ${p}`);
  }
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
  for (const item of Object.values(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (m === 'parameters') continue;
      assert.ok(Array.isArray(op['x-caredesk-roles']), `${m} roles`);
      assert.ok(op.operationId && op.summary && op.responses);
      if (op['x-caredesk-roles'].length) assert.ok(op.responses['401'] && op.responses['403']);
    }
  }
  // Every $ref resolves.
  const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[A-Za-z]+"/g);
  for (const r of refs) assert.ok(doc.components.schemas[r.slice(22, -1)], r);
});

test('real responses of every operation validate against the document', async () => {
  // Public routes.
  await call('GET', '/api/openapi.json', { expect: 200 });
  await call('GET', '/healthz', { expect: 200 });
  await call('GET', '/metrics', { expect: 200 });
  await call('GET', '/api/search?q=where%20is%20my%20order', { expect: 200 });
  await call('GET', '/api/search?q=return&lang=en&limit=2', { expect: 200 });
  await call('GET', '/api/search', { expect: 400 });
  await call('GET', '/api/search?q=x&limit=99', { expect: 400 });

  // Accounts and roles.
  for (const role of ['agent', 'author', 'admin']) await call('GET', '/api/me', { token: tokens[role], expect: 200 });
  await call('GET', '/api/me', { expect: 401 });
  await call('GET', '/api/me', { token: 'not-a-token', expect: 401 });
  await call('GET', '/api/queues', { token: tokens.agent, expect: 200 });
  await call('GET', '/api/queues', { token: tokens.author, expect: 403 });

  // Articles: create, list, read, update (a revision), revisions, page, delete.
  const article = {
    id: 'openapi-zebra', title: 'Zebra grooming', body: 'Brush **zebras** weekly.\n\n- gently\n- often\n',
    tags: ['care'], questions: ['how do I brush a zebra'],
  };
  await call('POST', '/api/articles', { token: tokens.author, body: article, expect: 201 });
  await call('POST', '/api/articles', { token: tokens.author, body: article, expect: 409 });
  await call('POST', '/api/articles', { token: tokens.author, body: { id: 'x' }, expect: 400 });
  await call('POST', '/api/articles', { token: tokens.agent, body: article, expect: 403 });
  await call('GET', '/api/articles', { token: tokens.author, expect: 200 });
  await call('GET', '/api/articles?q=zebra&status=published&limit=5', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/articles?status=nope', { token: tokens.admin, expect: 400 });
  await call('GET', '/api/articles/openapi-zebra', { token: tokens.author, expect: 200 });
  await call('GET', '/api/articles/no-such-article', { token: tokens.author, expect: 404 });
  await call('GET', '/api/articles/BAD%20ID', { token: tokens.author, expect: 400 });
  await call('PUT', '/api/articles/openapi-zebra', {
    token: tokens.admin, body: { ...article, body: 'Brush zebras daily.', status: 'draft' }, expect: 200,
  });
  await call('PUT', '/api/articles/openapi-new', {
    token: tokens.author, body: { title: 'New one', body: 'Text.', lang: 'en', published: true }, expect: 201,
  });
  await call('PUT', '/api/articles/openapi-new', { token: tokens.author, body: { id: 'other', title: 't', body: 'b' }, expect: 400 });
  await call('GET', '/api/articles/openapi-zebra/revisions', { token: tokens.author, expect: 200 });
  await call('GET', '/api/articles/no-such-article/revisions', { token: tokens.author, expect: 404 });
  await call('GET', '/api/articles/openapi-zebra/revisions/1', { token: tokens.author, expect: 200 });
  await call('GET', '/api/articles/openapi-zebra/revisions/2', { token: tokens.author, expect: 200 });
  await call('GET', '/api/articles/openapi-zebra/revisions/99', { token: tokens.author, expect: 404 });
  await call('GET', '/api/articles/openapi-zebra/revisions/x', { token: tokens.author, expect: 400 });
  await call('GET', '/kb/openapi-new', { expect: 200 });
  await call('GET', '/kb/openapi-zebra', { expect: 404 }); // a draft now
  await call('DELETE', '/api/articles/openapi-new', { token: tokens.author, expect: 200 });
  await call('DELETE', '/api/articles/openapi-new', { token: tokens.author, expect: 404 });

  // The intents report.
  await call('GET', '/api/intents/check', { token: tokens.author, expect: 200 });
  await call('GET', '/api/intents/check', { token: tokens.agent, expect: 403 });

  // The bot, learning, unanswered questions.
  await call('GET', '/api/ask?q=where%20is%20my%20order', { token: tokens.author, expect: 200 });
  await call('GET', '/api/ask?q=I%20want%20a%20person&lang=en', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/ask', { token: tokens.author, expect: 400 });
  await call('GET', '/api/ask?q=x', { token: tokens.agent, expect: 403 });
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello', lang: 'en', name: 'Sam', email: 'sam@example.com' });
  const welcome = await c.next((f) => f.type === 'welcome');
  c.send({ type: 'message', id: 'm1', text: 'how do I repaint a vintage zeppelin hangar' });
  await c.next((f) => f.reply_to === 'm1');
  c.send({ type: 'message', id: 'm2', text: 'my card 4242 4242 4242 4242 was charged twice' });
  await c.next((f) => f.reply_to === 'm2');
  c.close();
  const un = await call('GET', '/api/unanswered', { token: tokens.author, expect: 200 });
  await call('GET', '/api/unanswered?since=0&limit=5', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/unanswered?limit=0', { token: tokens.admin, expect: 400 });
  const question = un.json.questions[0]?.text || 'how do I repaint a vintage zeppelin hangar';
  await call('POST', '/api/learn', { token: tokens.author, body: { question, article: 'openapi-zebra' }, expect: 200 });
  await call('POST', '/api/learn', { token: tokens.author, body: { question, article: 'no-such-article' }, expect: 404 });
  await call('POST', '/api/learn', { token: tokens.author, body: { question: '' }, expect: 400 });

  // Conversations and stats.
  await call('GET', `/api/conversations/${welcome.conversation}`, { token: tokens.agent, expect: 200 });
  await call('GET', '/api/conversations/999999', { token: tokens.admin, expect: 404 });
  await call('GET', '/api/conversations/abc', { token: tokens.admin, expect: 400 });
  await call('GET', `/api/conversations/${welcome.conversation}`, { token: tokens.author, expect: 403 });
  await call('GET', '/api/stats', { token: tokens.agent, expect: 200 });
  await call('GET', '/api/stats?since=1&until=4000000000', { token: tokens.author, expect: 200 });
  await call('GET', '/api/stats?since=5&until=4', { token: tokens.admin, expect: 400 });

  // Data-subject requests.
  await call('GET', `/api/export?conversation=${welcome.conversation}`, { token: tokens.admin, expect: 200 });
  await call('GET', '/api/export?email=sam@example.com', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/export?conversation=999999', { token: tokens.admin, expect: 404 });
  await call('GET', '/api/export', { token: tokens.admin, expect: 400 });
  await call('GET', '/api/export?email=sam@example.com', { token: tokens.agent, expect: 403 });
  await call('POST', '/api/erase', { token: tokens.admin, body: { email: 'nobody@example.com' }, expect: 200 });
  await call('POST', '/api/erase', { token: tokens.admin, body: {}, expect: 400 });

  // Webhook deliveries: the article published above failed (nothing listens on port 9).
  let failed;
  for (let i = 0; i < 100 && !failed; i++) {
    const r = await call('GET', '/api/webhooks/deliveries?status=failed&limit=10', { token: tokens.admin, expect: 200 });
    failed = r.json.deliveries[0];
    if (!failed) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(failed, 'a failed delivery');
  await call('GET', '/api/webhooks/deliveries', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/webhooks/deliveries?status=nope', { token: tokens.admin, expect: 400 });
  await call('GET', '/api/webhooks/deliveries', { token: tokens.author, expect: 403 });
  await call('GET', `/api/webhooks/deliveries/${failed.id}`, { token: tokens.admin, expect: 200 });
  await call('GET', '/api/webhooks/deliveries/999999', { token: tokens.admin, expect: 404 });
  await call('GET', '/api/webhooks/deliveries/x', { token: tokens.admin, expect: 400 });
  await call('POST', `/api/webhooks/deliveries/${failed.id}/redeliver`, { token: tokens.admin, expect: 200 });
  await call('POST', `/api/webhooks/deliveries/${failed.id}/redeliver`, { token: tokens.admin, expect: 409 });
  await call('POST', '/api/webhooks/deliveries/999999/redeliver', { token: tokens.admin, expect: 404 });

  // The team routes. This server has no QA rubric: the QA routes answer 503, which is
  // what is validated of them here (their bodies are open objects in the document).
  await call('GET', '/api/report', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/report?format=md', { token: tokens.supervisor, expect: 200 });
  await call('GET', '/api/report?format=csv&week=2026-W49', { token: tokens.admin, expect: 200 });
  await call('GET', '/api/report?format=pdf', { token: tokens.admin, expect: 400 });
  await call('GET', '/api/report', { token: tokens.agent, expect: 403 });
  for (const [m, path] of [['GET', '/api/qa/rubric'], ['GET', '/api/qa/samples'], ['POST', '/api/qa/samples'],
    ['GET', '/api/qa/audits'], ['POST', '/api/qa/audits'], ['GET', '/api/qa/calibration'], ['GET', '/api/qa/scores']]) {
    await call(m, path, { token: tokens.supervisor, body: m === 'POST' ? {} : undefined, expect: 503 });
  }
  await call('GET', '/api/status-updates?tracking_id=INC-2026-1206-0042', { token: tokens.agent, expect: 200 });
  await call('GET', '/api/status-updates', { token: tokens.agent, expect: 400 });

  // Every operation was exercised: with its success status, but for the QA routes (above).
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(item)) {
      if (m === 'parameters') continue;
      const okStatus = p.startsWith('/api/qa/') ? '503' : Object.keys(op.responses).find((s) => s.startsWith('2'));
      assert.ok(covered.has(`${m.toUpperCase()} ${p} ${okStatus}`), `${m.toUpperCase()} ${p} ${okStatus} was validated`);
    }
  }
});
