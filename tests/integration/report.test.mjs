// Team figures against the real server: /api/stats carries FCR, handle time,
// SLAs per queue, NPS and the QA score for a chat handled end to end; /metrics
// shows the live SLA gauges; a bad SLA targets setting stops the start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, runCaredesk, fixtures, addUser } from './lib/server.mjs';
import { isoWeek } from './lib/week.mjs';
import { sleep } from './lib/wait.mjs';
import { connect, claimReplyClose, openCustomer, openAgent } from './lib/client.mjs';

let srv;
const tokens = {};

const customer = () => openCustomer(srv, { type: 'hello', lang: 'en', name: 'Sam', email: 'sam@example.com' });
const agent = (token) => openAgent(srv, token);

async function stats() {
  const r = await fetch(`${srv.url}/api/stats?since=1&until=${Math.floor(Date.now() / 1000) + 60}`,
    { headers: { authorization: `Bearer ${tokens.admin}` } });
  assert.equal(r.status, 200);
  return r.json();
}

async function metrics() {
  return (await fetch(`${srv.url}/metrics`)).text();
}

before(async () => {
  srv = await startServer({
    ...fixtures,
    args: ['--pickup-target', '1', '--sla-targets', 'billing=120/2bd', '--queues',
      'general,billing,orders,technical,accounts'],
  });
  tokens.ana = await addUser(srv.db, 'Ana', 'agent', '');
  tokens.admin = await addUser(srv.db, 'Root', 'admin');
});

after(async () => { await srv?.stop(); });

test('a bad sla-targets setting is refused with a message naming it', async () => {
  const r = await runCaredesk(['serve', '--port', '0', '--sla-targets', 'billing=fast',
    '--db', path.join(srv.dir, 'unused.db')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /setting 'sla-targets'/);
});

test('/api/stats: FCR, handle time and SLA rows for a chat an agent closed', async () => {
  const empty = await stats();
  assert.equal(empty.fcr.window_s, 7 * 86400);
  assert.equal(empty.nps, null);
  assert.equal(empty.qa_score, null);
  assert.equal(empty.aht_s, 0);
  const billing = empty.sla.find((q) => q.queue === 'billing');
  assert.equal(billing.first_response.target_s, 120);
  const general = empty.sla.find((q) => q.queue === 'general');
  assert.equal(general.first_response.target_s, 1); // pickup-target
  assert.equal(general.resolution.target_s, 86400); // one business day, always open

  const ana = await agent(tokens.ana);
  assert.equal(ana.ready.type, 'ready');
  const c = await customer();
  c.send({ type: 'message', id: 'm1', text: 'how do I reset my password' });
  await c.next((f) => f.type === 'reply' && f.reply_to === 'm1');
  c.send({ type: 'handoff' });
  await c.next((f) => f.type === 'queued');
  const conv = c.welcome.conversation;
  await ana.next((f) => f.type === 'queue' && f.items.some((i) => i.conversation === conv));

  // Waiting past the 1 s pickup target: the live gauge says so.
  await sleep(2100);
  const live = await metrics();
  const queue = (await stats()).sla.find((q) => q.first_response.breached > 0);
  assert.ok(queue, 'a queue shows the waiting chat as breached');
  assert.match(live, /^# TYPE caredesk_sla_breached gauge$/m);
  assert.match(live,
    new RegExp(`^caredesk_sla_breached\\{queue="${queue.queue}",sla="first_response"\\} 1$`, 'm'));

  await claimReplyClose(ana, conv, 'Hi Sam.');
  c.close();
  ana.close();

  const s = await stats();
  assert.equal(s.fcr.agent.n, 1);
  assert.equal(s.fcr.agent.resolved, 1);
  assert.equal(s.fcr.by_driver[0].name, 'password');
  assert.equal(s.aht.n, 1);
  assert.ok(s.aht_s >= 0 && s.aht_s < 30, JSON.stringify(s.aht));
  assert.equal(s.aht.by_agent[0].name, 'Ana');
  const q = s.sla.find((r) => r.queue === queue.queue);
  assert.equal(q.first_response.n, 1);
  assert.equal(q.first_response.met, 0); // picked up after more than 1 s
  assert.equal(q.first_response.breached, 0); // nothing waiting now
  assert.equal(q.resolution.n, 1);
  assert.equal(q.resolution.met, 1);
  assert.match(await metrics(),
    new RegExp(`^caredesk_sla_breached\\{queue="${queue.queue}",sla="first_response"\\} 0$`, 'm'));
});

test('weekly report: caredesk report and GET /api/report agree; bad input is refused', async () => {
  const week = isoWeek(new Date());
  const json = await runCaredesk(['report', '--week', week, '--format', 'json', '--db', srv.db,
    '--sla-targets', 'billing=120/2bd', '--pickup-target', '1']);
  assert.equal(json.code, 0, json.stderr);
  const cli = JSON.parse(json.stdout);
  assert.equal(cli.week, week);
  const conv = cli.kpis.find((k) => k.key === 'conversations');
  assert.ok(conv.value >= 1);
  assert.equal(cli.service_levels.find((q) => q.queue === 'billing').first_response_target_s, 120);
  assert.equal(cli.drivers[0].name, 'password');

  const r = await fetch(`${srv.url}/api/report?week=${week}`,
    { headers: { authorization: `Bearer ${tokens.admin}` } });
  assert.equal(r.status, 200);
  const rest = await r.json();
  assert.deepEqual({ ...rest, generated_s: 0 }, { ...cli, generated_s: 0 });

  const md = await fetch(`${srv.url}/api/report?week=${week}&format=md`,
    { headers: { authorization: `Bearer ${tokens.admin}` } });
  assert.match(md.headers.get('content-type'), /^text\/markdown/);
  assert.match(await md.text(), new RegExp(`^# Weekly report ${week}\n`));
  const cliMd = await runCaredesk(['report', '--week', week, '--db', srv.db]);
  assert.match(cliMd.stdout, /^\| 1 \| password \| 1 \| \+1 \| 100\.0% \| – \|$/m);
  const csv = await runCaredesk(['report', `--week=${week}`, '--format', 'csv', '--db', srv.db]);
  assert.match(csv.stdout, /^driver,password,count,1,0,1\r$/m);

  for (const args of [['--week', '2026-W60'], ['--week', 'last'], ['--format', 'pdf'], ['--week']]) {
    const bad = await runCaredesk(['report', ...args, '--db', srv.db]);
    assert.equal(bad.code, 2, `${args}: ${bad.stderr}`);
    assert.match(bad.stderr, /caredesk report: /);
    assert.equal(bad.stdout, '');
  }
  const badWeek = await fetch(`${srv.url}/api/report?week=2026-49`,
    { headers: { authorization: `Bearer ${tokens.admin}` } });
  assert.equal(badWeek.status, 400);
  assert.equal((await badWeek.json()).error, 'bad_week');
  const badFormat = await fetch(`${srv.url}/api/report?format=xml`,
    { headers: { authorization: `Bearer ${tokens.admin}` } });
  assert.equal(badFormat.status, 400);
  const agentOnly = await fetch(`${srv.url}/api/report`, { headers: { authorization: `Bearer ${tokens.ana}` } });
  assert.equal(agentOnly.status, 403);
  assert.equal((await fetch(`${srv.url}/api/report`)).status, 401);
  const post = await fetch(`${srv.url}/api/report`, { method: 'POST',
    headers: { authorization: `Bearer ${tokens.admin}` } });
  assert.equal(post.status, 405);
});

test('NPS: asked after the rating when the deployment turns it on, counted in /api/stats', async () => {
  const on = await startServer({ ...fixtures, args: ['--nps'] });
  try {
    const r = await runCaredesk(['user', 'add', 'Root', '--role', 'admin', '--db', on.db]);
    const admin = r.stdout.trim().split('\n').pop().trim();
    const c = await connect(`${on.wsUrl}/chat`);
    c.send({ type: 'hello', lang: 'en' });
    await c.next((f) => f.type === 'welcome');
    c.send({ type: 'message', id: 'm1', text: 'how do I reset my password' });
    await c.next((f) => f.type === 'reply');
    c.send({ type: 'close' });
    await c.next((f) => f.type === 'rating_request');
    c.send({ type: 'nps', score: 12 });
    assert.equal((await c.next((f) => f.type === 'error')).code, 'bad_frame');
    c.send({ type: 'rating', score: 5 });
    await c.next((f) => f.type === 'rating_ok');
    const q = await c.next((f) => f.type === 'nps_request');
    assert.deepEqual([q.min, q.max], [0, 10]);
    c.send({ type: 'nps', score: 10, comment: 'Found it at once' });
    assert.equal((await c.next((f) => f.type === 'nps_ok' || f.type === 'error')).type, 'nps_ok');
    c.close();
    const s = await fetch(`${on.url}/api/stats?since=1&until=${Math.floor(Date.now() / 1000) + 60}`,
      { headers: { authorization: `Bearer ${admin}` } }).then((x) => x.json());
    assert.equal(s.nps.n, 1);
    assert.equal(s.nps.score, 100);
    assert.equal(s.nps.by_driver[0].verbatims[0].comment, 'Found it at once');
  } finally {
    await on.stop();
  }
});
