// QA audits against the real server: the supervisor role, the weekly sample
// (stratified, the same for the same seed), scoring against the rubric in
// qa/, who may score what, the calibration view, agents seeing their own
// audits, and QA switched off when there is no rubric.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, runCaredesk, fixtures, repoRoot, addUser } from './lib/server.mjs';
import { isoWeek } from './lib/week.mjs';
import { connect, claimReplyClose } from './lib/client.mjs';

let srv;
const tokens = {};
const ids = {};

function api(method, url, token, body) {
  return fetch(srv.url + url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  }).then(async (r) => ({ status: r.status, json: await r.json() }));
}

// A chat handed to an agent and closed by them; returns its id.
async function handledChat(agentToken, text) {
  const a = await connect(`${srv.wsUrl}/agent`);
  a.send({ type: 'auth', token: agentToken });
  await a.next((f) => f.type === 'ready');
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello', lang: 'en', name: 'Sam' });
  const welcome = await c.next((f) => f.type === 'welcome');
  c.send({ type: 'message', id: 'm1', text });
  await c.next((f) => f.type === 'reply' && f.reply_to === 'm1');
  c.send({ type: 'handoff' });
  await c.next((f) => f.type === 'queued');
  const conv = welcome.conversation;
  await a.next((f) => f.type === 'queue' && f.items.some((i) => i.conversation === conv));
  await claimReplyClose(a, conv, 'Hello Sam, happy to help.');
  a.close();
  c.close();
  return conv;
}

const full = { greeting: 4, correct_answer: 4, no_sensitive_data: 4, empathy: 4, next_step: 4 };

before(async () => {
  srv = await startServer({ ...fixtures, args: ['--qa-rubric', path.join(repoRoot, 'qa/rubric.json'), '--qa-sample', '2'] });
  tokens.ana = await addUser(srv.db, 'Ana', 'agent');
  tokens.bo = await addUser(srv.db, 'Bo', 'agent');
  tokens.sue = await addUser(srv.db, 'Sue', 'supervisor');
  tokens.sam = await addUser(srv.db, 'Sam', 'supervisor', 'nosuchqueue');
  tokens.root = await addUser(srv.db, 'Root', 'admin');
  for (const name of ['ana', 'bo', 'sue']) ids[name] = (await api('GET', '/api/me', tokens[name])).json.id;
  ids.c1 = await handledChat(tokens.ana, 'how do I reset my password');
  ids.c2 = await handledChat(tokens.ana, 'how do I reset my password please');
  ids.c3 = await handledChat(tokens.ana, 'I forgot my password');
});

after(async () => { await srv?.stop(); });

test('supervisors sign in; the rubric is served', async () => {
  const me = await api('GET', '/api/me', tokens.sue);
  assert.equal(me.json.role, 'supervisor');
  const r = await api('GET', '/api/qa/rubric', tokens.ana);
  assert.equal(r.status, 200);
  assert.equal(r.json.pass_mark, 80);
  assert.deepEqual(r.json.criteria.map((c) => c.id),
    ['greeting', 'correct_answer', 'no_sensitive_data', 'empathy', 'next_step']);
  // Supervisors read stats and transcripts; they take no chats.
  assert.equal((await fetch(`${srv.url}/api/stats`, { headers: { authorization: `Bearer ${tokens.sue}` } })).status, 200);
});

test('the weekly sample: N per agent, the same for the same seed, only for reviewers', async () => {
  const week = isoWeek(new Date());
  const a = await api('POST', '/api/qa/samples', tokens.sue, { week, seed: 7 });
  assert.equal(a.status, 200, JSON.stringify(a.json));
  assert.equal(a.json.per_agent, 2);
  assert.equal(a.json.seed, 7);
  assert.equal(a.json.samples.length, 2); // Ana's 3 chats, 2 drawn
  assert.ok(a.json.samples.every((s) => s.agent === 'Ana'));
  const b = await api('POST', '/api/qa/samples', tokens.root, { week, seed: 7 });
  assert.deepEqual(b.json.samples.map((s) => s.conversation), a.json.samples.map((s) => s.conversation));
  const listed = await api('GET', `/api/qa/samples?week=${week}`, tokens.sue);
  assert.deepEqual(listed.json.samples.map((s) => s.conversation), a.json.samples.map((s) => s.conversation));
  assert.equal((await api('POST', '/api/qa/samples', tokens.ana, { week })).status, 403);
  assert.equal((await api('POST', '/api/qa/samples', tokens.sue, { week: 'soon' })).json.error, 'bad_week');
  assert.equal((await api('POST', '/api/qa/samples', tokens.sue, { week, seed: -1 })).json.error, 'bad_seed');
  assert.equal((await api('POST', '/api/qa/samples', tokens.sue, '[1]')).json.error, 'bad_json');
});

test('scoring: rights are checked, bad scores change nothing, reviewers calibrate', async () => {
  const week = isoWeek(new Date());
  const none = async () => (await api('GET', '/api/qa/audits', tokens.root)).json.audits.length;
  // Outside their rights or malformed: refused, nothing stored.
  const tries = [
    [tokens.ana, { conversation: ids.c1, scores: full }, 403, 'forbidden'],
    [tokens.sam, { conversation: ids.c1, scores: full }, 403, 'forbidden'],
    [tokens.sue, { conversation: 99999, scores: full }, 404, 'not_found'],
    [tokens.sue, { conversation: ids.c1, scores: { ...full, greeting: 9 } }, 400, 'bad_scores'],
    [tokens.sue, { conversation: ids.c1, scores: { greeting: 4 } }, 400, 'bad_scores'],
    [tokens.sue, { conversation: ids.c1 }, 400, 'bad_scores'],
    [tokens.sue, { conversation: 'x', scores: full }, 400, 'bad_audit'],
    // A body is read as every route reads one: a key given twice is refused, not the last
    // one taken; invalid JSON is named by line and column.
    [tokens.sue, '', 400, 'missing_body', /^send \{"conversation"/],
    [tokens.sue, `{"conversation": ${ids.c1}, "scores": ${JSON.stringify(full)}, "scores": {}}`,
      400, 'bad_json', /duplicate/],
    [tokens.sue, '{"conversation": ', 400, 'bad_json', /line 1 column \d+/],
    [tokens.sue, '[1]', 400, 'bad_json', /JSON object \(got an array\)/],
  ];
  for (const [token, body, status, code, says] of tries) {
    const r = await api('POST', '/api/qa/audits', token, body);
    assert.equal(r.status, status, JSON.stringify([body, r.json]));
    assert.equal(r.json.error, code);
    assert.ok(r.json.message);
    if (says) assert.match(r.json.message, says);
  }
  assert.equal(await none(), 0);

  const sue = await api('POST', '/api/qa/audits', tokens.sue,
    { conversation: ids.c1, scores: { ...full, greeting: 2, next_step: 2 }, comment: 'Greet by name.' });
  assert.equal(sue.status, 201, JSON.stringify(sue.json));
  assert.equal(sue.json.score, 87.5);
  assert.equal(sue.json.passed, true);
  const root = await api('POST', '/api/qa/audits', tokens.root,
    { conversation: ids.c1, scores: { ...full, no_sensitive_data: 0 } });
  assert.equal(root.json.score, 75);
  assert.equal(root.json.passed, false); // a critical criterion at 0

  const cal = await api('GET', `/api/qa/calibration?week=${week}`, tokens.sue);
  assert.equal(cal.status, 200);
  assert.equal(cal.json.conversations.length, 1);
  const c = cal.json.conversations[0];
  assert.equal(c.conversation, ids.c1);
  assert.equal(c.score_spread, 12.5);
  assert.deepEqual(c.criteria.find((k) => k.id === 'no_sensitive_data').points.sort(), [0, 4]);
  assert.equal(c.criteria.find((k) => k.id === 'no_sensitive_data').spread, 4);
  assert.equal(cal.json.criteria.find((k) => k.id === 'correct_answer').mean_spread, 0);
  assert.equal((await api('GET', `/api/qa/calibration?week=${week}`, tokens.ana)).status, 403);

  // The agent sees their own audits, comments included, and no one else's.
  const mine = await api('GET', '/api/qa/audits', tokens.ana);
  assert.equal(mine.json.audits.length, 2);
  assert.ok(mine.json.audits.some((x) => x.comment === 'Greet by name.' && x.reviewer === 'Sue'));
  assert.equal((await api('GET', '/api/qa/audits', tokens.bo)).json.audits.length, 0);
  assert.equal((await api('GET', `/api/qa/audits?agent=${ids.ana}`, tokens.bo)).status, 403);
  const scores = await api('GET', '/api/qa/scores', tokens.ana);
  assert.equal(scores.json.agents[0].weeks[0].n, 2);
  assert.equal(scores.json.agents[0].weeks[0].score, 81.25);
  // The dashboard's QA score is the same mean.
  const stats = await fetch(`${srv.url}/api/stats?since=1&until=${Math.floor(Date.now() / 1000) + 60}`,
    { headers: { authorization: `Bearer ${tokens.root}` } }).then((r) => r.json());
  assert.equal(stats.qa_score, 81.25);
  assert.equal(stats.qa_audits, 2);
});

test('without a rubric file QA is off and says so', async () => {
  const off = await startServer({ ...fixtures, args: ['--qa-rubric', '/nonexistent/rubric.json'] });
  try {
    const r = await runCaredesk(['user', 'add', 'Sid', '--role', 'supervisor', '--db', off.db]);
    const token = r.stdout.trim().split('\n').pop().trim();
    const res = await fetch(`${off.url}/api/qa/rubric`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error, 'qa_off');
  } finally {
    await off.stop();
  }
  // A rubric that is there but wrong stops the start, naming the file.
  const bad = await runCaredesk(['serve', '--port', '0', '--db', path.join(srv.dir, 'unused.db'), '--qa-rubric',
    path.join(repoRoot, 'README.md')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /setting 'qa-rubric': .*README\.md: not JSON/);
});
