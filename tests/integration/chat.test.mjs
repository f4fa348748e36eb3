// Whole conversations against the real server, as the widget and the agent
// console would have them: answer, clarify, explicit and low-confidence
// handoff, claim race, transcript to the agent, agent reply, close and
// rating, resume after a dropped connection and after kill -9, bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, fixtures, addUser } from './lib/server.mjs';
import { connect, openCustomer, openAgent, ask } from './lib/client.mjs';
import { waitFor } from './lib/wait.mjs';

let srv;
const agents = {};

const customer = (s = srv, hello) => openCustomer(s, hello);
const agent = (token, s = srv) => openAgent(s, token);

before(async () => {
  srv = await startServer({ ...fixtures });
  const skills = 'general,orders,billing,accounts,technical';
  agents.ana = await addUser(srv.db, 'Ana', 'agent', skills);
  agents.bo = await addUser(srv.db, 'Bo', 'agent', skills);
  agents.author = await addUser(srv.db, 'Ada', 'author');
});

after(async () => { if (srv) await srv.stop(); });

test('answer: welcome first, then one reply per message with articles', async () => {
  const c = await customer();
  assert.equal(c.welcome.type, 'welcome');
  assert.equal(c.frames[0].type, 'welcome', 'welcome is the first frame');
  assert.match(c.welcome.token, /^[0-9a-f]{64}$/);
  assert.equal(c.welcome.state, 'bot');
  const r = await ask(c, 'm1', 'how do I reset my password');
  assert.equal(r.type, 'reply');
  assert.equal(r.action, 'answer');
  assert.equal(r.intent, 'password_reset');
  assert.equal(r.seq, 2);
  assert.ok(r.confidence > 0 && r.confidence <= 1);
  assert.ok(r.text.length > 0);
  assert.ok(Array.isArray(r.articles));
  c.send({ type: 'feedback', seq: r.seq, helpful: true });
  const ok = await c.next((f) => f.type === 'feedback_ok' || f.type === 'error');
  assert.equal(ok.type, 'feedback_ok');
  c.close();
});

test('a first message without hello starts a conversation', async () => {
  const c = await customer(srv, null);
  c.send({ type: 'message', id: 'x1', text: 'how do I reset my password' });
  const w = await c.next((f) => f.type === 'welcome');
  assert.match(w.token, /^[0-9a-f]{64}$/);
  const r = await c.next((f) => f.type === 'reply');
  assert.equal(r.reply_to, 'x1');
  c.close();
});

test('clarify: choices, and a choice is answered', async () => {
  const s = await startServer({
    // Only a rule (confidence 1) answers outright; the model's guesses clarify.
    ...fixtures, args: ['--answer-threshold', '1', '--clarify-threshold', '0.05', '--kb-threshold', '1'],
  });
  try {
    const c = await customer(s);
    const r = await ask(c, 'm1', 'money back for the parcel');
    assert.equal(r.action, 'clarify');
    assert.ok(r.choices.length >= 2 && r.choices.length <= 3);
    const pick = r.choices.find((ch) => ch.id === 'order_status') || r.choices[0];
    c.send({ type: 'message', id: 'm2', text: pick.label, choice: pick.id });
    const r2 = await c.next((f) => f.type === 'reply' && f.reply_to === 'm2');
    assert.equal(r2.action, 'answer');
    assert.equal(r2.intent, pick.id);
    c.close();
  } finally {
    await s.stop();
  }
});

test('explicit handoff, claim race, transcript, agent reply, close and rating', async () => {
  const ana = await agent(agents.ana);
  const bo = await agent(agents.bo);
  assert.equal(ana.ready.type, 'ready');
  assert.equal(bo.ready.type, 'ready');

  const c = await customer();
  const first = await ask(c, 'm1', 'how do I reset my password');
  assert.equal(first.action, 'answer');
  c.send({ type: 'handoff' });
  const h = await c.next((f) => f.type === 'reply' && f.action === 'handoff');
  assert.equal(typeof h.queue, 'string');
  const q = await c.next((f) => f.type === 'queued');
  assert.equal(q.offline, false, 'agents are available');
  assert.ok(q.position >= 1);
  const conv = c.welcome.conversation;

  // Both agents see it in the queue, then both claim it: exactly one wins.
  await ana.next((f) => f.type === 'queue' && f.items.some((i) => i.conversation === conv));
  await bo.next((f) => f.type === 'queue' && f.items.some((i) => i.conversation === conv));
  ana.send({ type: 'claim', conversation: conv });
  bo.send({ type: 'claim', conversation: conv });
  const ra = await ana.next((f) => (f.type === 'assigned' || f.type === 'error')
    && f.conversation === conv);
  const rb = await bo.next((f) => (f.type === 'assigned' || f.type === 'error')
    && f.conversation === conv);
  const results = [ra.type, rb.type].sort();
  assert.deepEqual(results, ['assigned', 'error']);
  const [winner, loserFrame] = ra.type === 'assigned' ? [ana, rb] : [bo, ra];
  const assigned = ra.type === 'assigned' ? ra : rb;
  assert.equal(loserFrame.code, 'already_claimed');

  // The transcript reaches the agent with what the bot guessed.
  const texts = assigned.transcript.map((m) => m.text);
  assert.ok(texts.includes('how do I reset my password'), JSON.stringify(texts));
  assert.ok(assigned.transcript.some((m) => m.sender === 'bot'));
  assert.equal(assigned.customer.name, 'Sam');

  // The customer is told an agent joined; messages now get ack.
  const joined = await c.next((f) => f.type === 'agent_joined');
  assert.ok(joined.agent);
  const ack = await ask(c, 'm2', 'are you there?');
  assert.equal(ack.type, 'ack');
  const relayed = await winner.next((f) => f.type === 'customer_message');
  assert.equal(relayed.text, 'are you there?');

  // The agent's reply reaches the customer.
  winner.send({ type: 'message', conversation: conv, id: 'a1', text: 'Hi Sam, I can help.' });
  const am = await c.next((f) => f.type === 'agent_message');
  assert.equal(am.text, 'Hi Sam, I can help.');
  await winner.next((f) => f.type === 'ack' && f.reply_to === 'a1');

  // Wrap-up closes the chat; the customer rates it.
  winner.send({ type: 'close', conversation: conv, disposition: 'password', note: 'reset' });
  await winner.next((f) => f.type === 'closed' && f.conversation === conv);
  const closed = await c.next((f) => f.type === 'closed');
  assert.equal(closed.by, 'agent');
  await c.next((f) => f.type === 'rating_request');
  c.send({ type: 'rating', score: 5, comment: 'quick' });
  const rated = await c.next((f) => f.type === 'rating_ok' || f.type === 'error');
  assert.equal(rated.type, 'rating_ok');
  const late = await ask(c, 'm3', 'hello again');
  assert.equal(late.type, 'error');
  assert.equal(late.code, 'bad_state');

  // REST: the transcript is there for agents, not for authors.
  const res = await fetch(`${srv.url}/api/conversations/${conv}`,
    { headers: { authorization: `Bearer ${agents.ana}` } });
  assert.equal(res.status, 200);
  const body = await res.text();
  assert.match(body, /Hi Sam, I can help\./);
  const denied = await fetch(`${srv.url}/api/conversations/${conv}`,
    { headers: { authorization: `Bearer ${agents.author}` } });
  await denied.text();
  assert.equal(denied.status, 403);
  for (const x of [c, ana, bo]) x.close();
});

test('low-confidence and sensitive messages hand off', async () => {
  const c = await customer();
  const r = await ask(c, 'm1', 'tell me a joke about quantum zebras');
  assert.equal(r.action, 'handoff', JSON.stringify(r));
  await c.next((f) => f.type === 'queued');
  c.close();
  const d = await customer();
  const r2 = await ask(d, 'm1', 'please cancel my order');
  assert.equal(r2.action, 'handoff');
  assert.equal(r2.queue, 'orders');
  d.close();
});

test('resume after a dropped connection replays what was missed, once', async () => {
  const c = await customer();
  const { token, conversation } = c.welcome;
  const r1 = await ask(c, 'm1', 'how do I reset my password');
  c.terminate();
  const c2 = await customer(srv, { type: 'hello', token, last_seq: 0 });
  assert.equal(c2.welcome.resumed, true);
  assert.equal(c2.welcome.conversation, conversation);
  assert.equal(c2.welcome.seq, r1.seq);
  const m = await c2.next((f) => f.type === 'customer_message');
  assert.equal(m.seq, 1);
  assert.equal(m.text, 'how do I reset my password');
  const rep = await c2.next((f) => f.type === 'reply');
  assert.equal(rep.seq, r1.seq);
  assert.equal(rep.text, r1.text);
  // Re-sending the same id does not store it twice.
  const again = await ask(c2, 'm1', 'how do I reset my password');
  assert.equal(again.seq, r1.seq);
  c2.close();
  const c3 = await customer(srv, { type: 'hello', token, last_seq: r1.seq });
  // Frames on one connection arrive in order: once the answer to a probe sent after the
  // hello is in, anything the resume would replay has arrived before it.
  c3.send({ type: 'probe' });
  await c3.next((f) => f.type === 'error');
  assert.deepEqual(c3.frames.map((f) => f.type), ['welcome', 'error']);
  c3.close();
  const bad = await customer(srv, { type: 'hello', token: 'a'.repeat(64) });
  assert.equal(bad.welcome.type, 'error');
  assert.equal(bad.welcome.code, 'bad_token');
  bad.close();
});

// A replay longer than the connection's queue goes out in steps as the client reads
// (the server gives the engine its room), on both backends: every item once, in order,
// through the smallest queue the setting allows.
test('resume through the smallest queue: the replay is paced, complete and in order', async () => {
  const s = await startServer({ ...fixtures, args: ['--rate-limit', '0', '--max-queued-frames', '4'] });
  try {
    const c = await openCustomer(s);
    const { token } = c.welcome;
    for (let i = 0; i < 40; i++) {
      c.send({ type: 'message', id: `m${i}`, text: `where is my order ${i}` });
      await c.next((f) => (f.type === 'reply' || f.type === 'ack') && f.reply_to === `m${i}`);
    }
    c.terminate();
    const last = Math.max(...c.frames.filter((f) => f.type !== 'welcome' && typeof f.seq === 'number')
      .map((f) => f.seq));
    assert.ok(last > 40, `${last} items`);
    const r = await openCustomer(s, { type: 'hello', token, last_seq: 0 });
    assert.equal(r.welcome.seq, last);
    await r.next((f) => f.type !== 'welcome' && f.seq === last, { timeoutMs: 20000 });
    const seqs = r.frames.filter((f) => f.type !== 'welcome' && typeof f.seq === 'number').map((f) => f.seq);
    assert.deepEqual(seqs, Array.from({ length: last }, (_, i) => i + 1));
    assert.equal(r.closed, null, 'the connection stays open');
    r.close();
  } finally {
    await s.stop();
  }
});

test('resume after kill -9 and restart on the same database', async () => {
  const s = await startServer({ ...fixtures });
  const c = await customer(s);
  const { token } = c.welcome;
  const r1 = await ask(c, 'm1', 'how do I reset my password');
  const r2 = await ask(c, 'm2', 'what is your return policy');
  await s.kill();
  await c.whenClosed();
  const s2 = await s.restart();
  try {
    const c2 = await customer(s2, { type: 'hello', token, last_seq: 0 });
    assert.equal(c2.welcome.resumed, true);
    const replies = [];
    for (let i = 0; i < 2; i++) replies.push(await c2.next((f) => f.type === 'reply'));
    assert.deepEqual(replies.map((f) => f.seq), [r1.seq, r2.seq]);
    assert.deepEqual(replies.map((f) => f.text), [r1.text, r2.text]);
    const r3 = await ask(c2, 'm3', 'how do I reset my password');
    assert.ok(r3.seq > r2.seq);
    c2.close();
  } finally {
    await s2.stop();
  }
});

test('bad input gets an error frame, stores nothing, and the server goes on', async () => {
  const c = await customer();
  const bad = [
    ['{"type":"message","id":', 'bad_json'],
    ['[]', null],
    ['{"type":"teleport"}', 'unknown_type'],
    ['{"type":"message","text":"no id"}', null],
    ['{"type":"message","id":"q1"}', null],
    ['{"no_type":true}', null],
  ];
  for (const [frame, code] of bad) {
    c.send(frame);
    const e = await c.next((f) => f.type === 'error');
    if (code) assert.equal(e.code, code, frame);
    assert.ok(e.message, frame);
  }
  c.send({ type: 'message', id: 'big', text: 'x'.repeat(5000) });
  const big = await c.next((f) => f.type === 'error');
  assert.equal(big.code, 'too_big');
  // Nothing was stored: the next message is seq 1, its reply seq 2.
  const r = await ask(c, 'ok1', 'how do I reset my password');
  assert.equal(r.type, 'reply');
  assert.equal(r.seq, 2);
  c.close();
  const res = await fetch(`${srv.url}/healthz`);
  assert.equal(res.status, 200);
  await res.text();
});

test('agent: bad token gets an error and close 1008; customers are not agents', async () => {
  const a = await agent('b'.repeat(64));
  assert.equal(a.ready.type, 'error');
  assert.equal((await a.whenClosed()).code, 1008);
  const n = await connect(`${srv.wsUrl}/agent`);
  n.send({ type: 'claim', conversation: 1 });
  const e = await n.next((f) => f.type === 'error');
  assert.equal(e.code, 'not_authenticated');
  assert.equal((await n.whenClosed()).code, 1008);
});

test('metrics count what happened: decisions, conversations, connections', async () => {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const value = (re) => Number((text.match(re) || [])[1]);
  assert.ok(value(/^caredesk_decisions_total\{action="answer"\} (\d+)$/m) >= 3);
  assert.ok(value(/^caredesk_decisions_total\{action="handoff"\} (\d+)$/m) >= 2);
  assert.ok(value(/^caredesk_conversations_total (\d+)$/m) >= 5);
  assert.ok(value(/^caredesk_connections_total\{kind="customer"\} (\d+)$/m) >= 5);
  assert.ok(value(/^caredesk_messages_stored_total\{sender="agent"\} (\d+)$/m) >= 1);
  assert.ok(value(/^caredesk_pickups_total\{within_target="any"\} (\d+)$/m) >= 1);
  assert.match(text, /^caredesk_queue_length \d+$/m);
  // The fixture KB has one language: its index was read once, at start, however many
  // messages were committed to the same database file since.
  assert.equal(value(/^caredesk_kb_index_reads_total (\d+)$/m), 1);
  assert.match(text, /^caredesk_wait_seconds_count [1-9]\d*$/m);
  // Fewer than 100 messages so far: the out-of-scope share is still the assumed one.
  assert.match(text, /^caredesk_out_of_scope_share 0\.5$/m);
  assert.match(text, /^caredesk_store_commit_seconds_count [1-9]\d*$/m);
});

test('unanswered questions: a "No" lists the question with a suggested article; teaching removes it',
  async () => {
    const get = async (token, query = '') => {
      const r = await fetch(`${srv.url}/api/unanswered${query}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: r.status, json: await r.json() };
    };
    const question = 'how do i reset my password';
    const saysNo = async (text) => {
      const c = await customer();
      const r = await ask(c, 'm1', text);
      assert.equal(r.type, 'reply');
      c.send({ type: 'feedback', seq: r.seq, helpful: false });
      const ok = await c.next((f) => f.type === 'feedback_ok' || f.type === 'error');
      assert.equal(ok.type, 'feedback_ok');
      c.close();
    };
    const t0 = Math.floor(Date.now() / 1000);
    await saysNo(question);
    await saysNo(question.toUpperCase()); // the same question in another case counts once
    const list = await get(agents.author);
    assert.equal(list.status, 200);
    const item = list.json.questions.find((q) => q.text.toLowerCase() === question);
    assert.ok(item, JSON.stringify(list.json));
    assert.equal(item.count, 2);
    assert.equal(item.lang, 'en');
    assert.ok(item.last_s >= t0 && item.last_s <= t0 + 60);
    assert.ok(item.suggested && item.suggested.id, 'the best current article is suggested');
    assert.match(item.suggested.url, /\/kb\//);
    // Bounded and checked; agents and strangers cannot read it.
    assert.equal((await get(agents.author, '?limit=1')).json.questions.length, 1);
    assert.equal((await get(agents.author, '?limit=0')).status, 400);
    assert.equal((await get(agents.author, '?limit=101')).status, 400);
    assert.equal((await get(agents.author, '?since=x')).status, 400);
    const later = await get(agents.author, `?since=${t0 + 3600}`);
    assert.ok(!later.json.questions.some((q) => q.text.toLowerCase() === question));
    assert.equal((await get(agents.ana)).status, 403);
    assert.equal((await fetch(`${srv.url}/api/unanswered`)).status, 401);

    // A failed teach leaves it listed; teaching removes it.
    const learn = (article) => fetch(`${srv.url}/api/learn`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agents.author}`, 'content-type': 'application/json' },
      body: JSON.stringify({ question: item.text, article }),
    });
    assert.equal((await learn('no-such-article')).status, 404);
    assert.ok((await get(agents.author)).json.questions.some((q) => q.text === item.text));
    assert.equal((await learn(item.suggested.id)).status, 200);
    const after = await get(agents.author);
    assert.ok(!after.json.questions.some((q) => q.text.toLowerCase() === question),
      JSON.stringify(after.json));
  });

test('deflection: /metrics and /api/stats count per conversation and agree, however often customers reconnect', async () => {
  const own = await startServer({ ...fixtures, quiet: true });
  try {
    const token = await addUser(own.db, 'Sue', 'agent');
    const resume = async (t, times) => {
      for (let i = 0; i < times; i++) {
        const c = await customer(own, { type: 'hello', token: t, last_seq: 0 });
        assert.equal(c.welcome.type, 'welcome');
        await c.replayed(c.welcome);
        c.close();
        await c.whenClosed();
      }
    };
    // A conversation: one question, the bot's action, then `back` reconnects.
    const conversation = async (text, action, back) => {
      const c = await customer(own);
      assert.equal((await ask(c, 'm1', text)).action, action);
      c.close();
      await resume(c.welcome.token, back);
      return c;
    };
    // Answered by the bot, and back three times.
    await conversation('how do I reset my password', 'answer', 3);
    // Answered once, no reconnects.
    await conversation('how do I reset my password', 'answer', 0);
    // Handed off, and back three times.
    await conversation('I want to talk to a person', 'handoff', 3);
    // The button after an answer, on a second connection.
    const d = await conversation('how do I reset my password', 'answer', 0);
    const d2 = await customer(own, { type: 'hello', token: d.welcome.token });
    d2.send({ type: 'handoff' });
    await d2.next((f) => f.type === 'queued');
    d2.close();
    await d2.whenClosed();
    // The last handoff counts once the server has handled it: wait until both show it.
    const read = async () => ({
      stats: await (await fetch(`${own.url}/api/stats?since=1`, {
        headers: { authorization: `Bearer ${token}` },
      })).json(),
      text: await (await fetch(`${own.url}/metrics`)).text(),
    });
    const counted = (r) => r.stats.handoffs === 2 && /^caredesk_conversations_escalated_total 2$/m.test(r.text);
    let got;
    await waitFor(async () => counted(got = await read()));
    const { stats, text } = got;
    assert.equal(stats.conversations, 4, JSON.stringify(stats));
    assert.equal(stats.handoffs, 2);
    const value = (re) => Number((text.match(re) || [])[1]);
    assert.equal(value(/^caredesk_conversations_engaged_total (\d+)$/m), 4);
    assert.equal(value(/^caredesk_conversations_escalated_total (\d+)$/m), 2);
    const ratio = value(/^caredesk_deflection_ratio ([0-9.e+-]+)$/m);
    assert.ok(Math.abs(ratio - stats.deflection_rate) < 1e-9,
      `/metrics says ${ratio}, /api/stats ${stats.deflection_rate}`);
    assert.ok(Math.abs(ratio - 0.5) < 1e-9);
  } finally {
    await own.stop();
  }
});

test('teaching: a question taught for an article is answered with it next time, without a restart',
  async () => {
    const learn = (question, article) => fetch(`${srv.url}/api/learn`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agents.author}`, 'content-type': 'application/json' },
      body: JSON.stringify({ question, article }),
    });
    // One the bot hands off as out of scope, one it answers with "which of these?".
    const cases = [
      { text: 'are gifts bought in december returnable in january', article: 'return-policy' },
      { text: 'it still has not come', article: 'order-status' },
    ];
    for (const { text, article } of cases) {
      const c1 = await customer();
      const before = await ask(c1, 'm1', text);
      c1.close();
      assert.equal(before.type, 'reply');
      assert.ok(before.action !== 'answer' || before.articles[0]?.id !== article,
        `not answered with ${article} before teaching: ${JSON.stringify(before)}`);
      assert.equal((await learn(text, article)).status, 200);
      // A new conversation, the same question in other case and spacing.
      const c2 = await customer();
      const r = await ask(c2, 'm1', `  ${text.toUpperCase()}?`);
      c2.close();
      assert.equal(r.type, 'reply');
      assert.equal(r.action, 'answer', JSON.stringify(r));
      assert.equal(r.articles[0].id, article, JSON.stringify(r));
    }
  });

test('out-of-scope share: measured on the stored questions again after a restart', async () => {
  const s = await startServer({ ...fixtures, args: ['--rate-limit', '0'] });
  let s2;
  try {
    // 150 questions, two in three about something the bot does not do; one conversation
    // each (a question handed off leaves the next ones to a person, not to the bot).
    const topics = ['the capital of', 'a good film set in', 'the football score in', 'the weather in',
      'a train to'];
    const places = ['Lisbon', 'Oslo', 'Quito', 'Hanoi', 'Perth', 'Tunis', 'Lima', 'Riga', 'Accra',
      'Dhaka'];
    const mine = ['where is my order', 'how do I reset my password', 'when will my refund arrive'];
    for (let i = 0; i < 150; i++) {
      const c = await openCustomer(s);
      const text = i % 3 === 2 ? mine[(i / 3) % 3 | 0]
        : `tell me about ${topics[i % 5]} ${places[(i * 7) % 10]} please`;
      const r = await ask(c, 'm1', text);
      assert.equal(r.type, 'reply', JSON.stringify(r));
      c.close();
    }
    const share = async (srv) => {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      return Number((text.match(/^caredesk_out_of_scope_share ([0-9.]+)$/m) || [])[1]);
    };
    const measured = await share(s);
    assert.ok(measured > 0.5, `measured on 150 questions: ${measured}`);
    await s.stop({ keepDir: true });
    s2 = await s.restart();
    // Before any new message, the restarted server has measured the same questions again.
    const [ev] = s2.events('oos_share_measured');
    assert.ok(ev, 'logged at start-up');
    assert.equal(ev.questions, 150);
    assert.equal(ev.measured, true);
    assert.ok(Math.abs((await share(s2)) - measured) < 0.01, `${await share(s2)} vs ${measured}`);
  } finally {
    await (s2 || s).stop();
  }
});
