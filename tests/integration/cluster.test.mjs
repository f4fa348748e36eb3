// Three `caredesk serve` nodes on one PostgreSQL database, started as an operator would
// (--db postgresql://...), each on its own loopback port: a customer on node 1 is served by an
// agent on node 2 or 3; the queue every agent sees is the whole queue; one claim wins across
// nodes; messages cross both ways; node 1 is killed (SIGKILL) mid-chat and the customer
// resumes on node 2 with nothing lost and nothing repeated; the agent whose node died gets the
// chat back on another node; an agent's capacity holds across the nodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, fixtures, addUser, runCaredesk } from './lib/server.mjs';
import { openCustomer, openAgent, ask } from './lib/client.mjs';
import { pgDatabase, psql } from './lib/pg.mjs';
import { rest } from './lib/rest.mjs';
import { waitFor } from './lib/wait.mjs';

let db;
const nodes = [];
const tokens = {};

const customer = (s, hello) => openCustomer(s, hello);
const agent = (token, s) => openAgent(s, token);

// A customer of node s handed off to the queue; returns [client, conversation id].
async function queuedCustomer(s, name) {
  const c = await customer(s, { type: 'hello', lang: 'en', name });
  await ask(c, 'm1', 'how do I reset my password');
  c.send({ type: 'handoff' });
  await c.next((f) => f.type === 'queued');
  return [c, c.welcome.conversation];
}

const inQueue = (conv) => (f) => f.type === 'queue' && f.items.some((i) => i.conversation === conv);

before(async () => {
  db = await pgDatabase('cluster');
  const skills = 'general,orders,billing,accounts,technical';
  tokens.ana = await addUser(db, 'Ana', 'agent', skills);
  tokens.bo = await addUser(db, 'Bo', 'agent', skills);
  tokens.cy = await addUser(db, 'Cy', 'agent', skills);
  for (let i = 0; i < 3; i++) {
    nodes.push(await startServer({ ...fixtures, db, args: ['--agent-capacity', '2'] }));
  }
});

after(async () => {
  for (const n of nodes) await n.stop();
});

test('three nodes: every node is healthy and names itself in the log', async () => {
  for (const n of nodes) {
    const r = await fetch(`${n.url}/healthz`);
    const h = await r.json();
    assert.equal(r.status, 200);
    assert.equal(h.database, true);
    assert.equal(n.events('node_joined').length, 1);
  }
  const ids = new Set(nodes.map((n) => n.events('node_joined')[0].node));
  assert.equal(ids.size, 3);
});

test('a customer on node 1, agents on nodes 2 and 3: whole queue, one claim wins, messages both ways',
  async () => {
    const [n1, n2, n3] = nodes;
    const ana = await agent(tokens.ana, n2);
    const bo = await agent(tokens.bo, n3);
    assert.equal(ana.ready.type, 'ready');
    assert.equal(bo.ready.type, 'ready');
    const [c, conv] = await queuedCustomer(n1, 'Sam');

    // The chat queued on node 1 is in the queue of the agents on nodes 2 and 3.
    await ana.next(inQueue(conv));
    await bo.next(inQueue(conv));
    ana.send({ type: 'claim', conversation: conv });
    bo.send({ type: 'claim', conversation: conv });
    const ra = await ana.next((f) => (f.type === 'assigned' || f.type === 'error') && f.conversation === conv);
    const rb = await bo.next((f) => (f.type === 'assigned' || f.type === 'error') && f.conversation === conv);
    assert.deepEqual([ra.type, rb.type].sort(), ['assigned', 'error']);
    const [winner, assigned] = ra.type === 'assigned' ? [ana, ra] : [bo, rb];
    const loser = ra.type === 'assigned' ? rb : ra;
    assert.equal(loser.code, 'already_claimed');
    assert.ok(assigned.transcript.some((m) => m.text === 'how do I reset my password'));
    // ... and it leaves every node's queue.
    const other = winner === ana ? bo : ana;
    await other.next((f) => f.type === 'queue' && !f.items.some((i) => i.conversation === conv));

    // The customer on node 1 hears that the agent joined, on another node.
    const joined = await c.next((f) => f.type === 'agent_joined');
    assert.ok(joined.agent);

    // Customer -> agent, across nodes.
    const ack = await ask(c, 'm2', 'are you there?');
    assert.equal(ack.type, 'ack');
    const relayed = await winner.next((f) => f.type === 'customer_message' && f.conversation === conv);
    assert.equal(relayed.text, 'are you there?');
    assert.equal(relayed.seq, ack.seq);

    // Agent -> customer, across nodes, each message once and in order.
    for (let i = 1; i <= 5; i++) {
      winner.send({ type: 'message', conversation: conv, id: `a${i}`, text: `agent says ${i}` });
      await winner.next((f) => f.type === 'ack' && f.reply_to === `a${i}`);
    }
    const got = [];
    for (let i = 1; i <= 5; i++) got.push(await c.next((f) => f.type === 'agent_message'));
    assert.deepEqual(got.map((f) => f.text), [1, 2, 3, 4, 5].map((i) => `agent says ${i}`));
    const seqs = got.map((f) => f.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

    // The agent closes on their node; the customer on node 1 is told.
    winner.send({ type: 'close', conversation: conv, disposition: 'password' });
    await winner.next((f) => f.type === 'closed' && f.conversation === conv);
    const closed = await c.next((f) => f.type === 'closed');
    assert.equal(closed.by, 'agent');
    for (const x of [c, ana, bo]) x.close();
  });

test('an agent\'s capacity holds across nodes', async () => {
  const [n1, n2, n3] = nodes;
  // Cy is signed in on two nodes at once; capacity 2 counts both.
  const cy2 = await agent(tokens.cy, n2);
  const cy3 = await agent(tokens.cy, n3);
  const waiting = [];
  for (let i = 0; i < 3; i++) waiting.push(await queuedCustomer(n1, `Cap ${i}`));
  const [[, a], [, b], [, d]] = waiting;
  await cy2.next(inQueue(d));
  await cy3.next(inQueue(d));
  cy2.send({ type: 'claim', conversation: a });
  assert.equal((await cy2.next((f) => f.conversation === a && (f.type === 'assigned' || f.type === 'error'))).type, 'assigned');
  cy3.send({ type: 'claim', conversation: b });
  assert.equal((await cy3.next((f) => f.conversation === b && (f.type === 'assigned' || f.type === 'error'))).type, 'assigned');
  cy2.send({ type: 'claim', conversation: d });
  const third = await cy2.next((f) => f.conversation === d && (f.type === 'assigned' || f.type === 'error'));
  assert.equal(third.type, 'error');
  assert.equal(third.code, 'at_capacity');
  const inDb = psql(db, `SELECT count(*) FROM conversations WHERE agent_id = (SELECT id FROM users WHERE name = 'Cy') AND state = 'with_agent'`);
  assert.equal(inDb, '2');
  for (const [c] of waiting) c.close();
  cy2.close();
  cy3.close();
});

test('node 1 is killed mid-chat: the customer resumes on node 2, the agent on node 3 goes on; nothing lost, nothing repeated',
  async () => {
    const [n1, n2, n3] = nodes;
    const bo = await agent(tokens.bo, n3);
    const [c, conv] = await queuedCustomer(n1, 'Kim');
    await bo.next(inQueue(conv));
    bo.send({ type: 'claim', conversation: conv });
    await bo.next((f) => f.type === 'assigned' && f.conversation === conv);
    await c.next((f) => f.type === 'agent_joined');
    const acked = await ask(c, 'k1', 'first, before the crash');
    await bo.next((f) => f.type === 'customer_message' && f.seq === acked.seq);
    bo.send({ type: 'message', conversation: conv, id: 'b1', text: 'reply before the crash' });
    const before = await c.next((f) => f.type === 'agent_message');
    const lastSeen = before.seq;

    await n1.kill();
    await c.whenClosed();
    // While the customer is away the agent writes again.
    bo.send({ type: 'message', conversation: conv, id: 'b2', text: 'written while you were away' });
    const b2 = await bo.next((f) => f.type === 'ack' && f.reply_to === 'b2');

    // Through the load balancer the customer lands on node 2, with token and last_seq.
    const c2 = await customer(n2, { type: 'hello', token: c.welcome.token, last_seq: lastSeen });
    assert.equal(c2.welcome.resumed, true);
    assert.equal(c2.welcome.conversation, conv);
    const missed = await c2.next((f) => f.type === 'agent_message');
    assert.equal(missed.text, 'written while you were away');
    assert.equal(missed.seq, b2.seq);
    // Resending the message sent before the crash stores nothing twice.
    const again = await ask(c2, 'k1', 'first, before the crash');
    assert.equal(again.seq, acked.seq);
    // The conversation goes on from node 2 to the agent on node 3.
    const after = await ask(c2, 'k2', 'after the crash');
    const relayed = await bo.next((f) => f.type === 'customer_message' && f.seq === after.seq);
    assert.equal(relayed.text, 'after the crash');
    bo.send({ type: 'message', conversation: conv, id: 'b3', text: 'still here' });
    const b3 = await c2.next((f) => f.type === 'agent_message');
    assert.equal(b3.text, 'still here');

    // Every stored message once, seqs 1..n without gaps.
    const seqs = psql(db, `SELECT string_agg(seq::text, ',' ORDER BY seq) FROM messages WHERE conversation = ${conv}`)
      .split(',').map(Number);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    const k1 = psql(db, `SELECT count(*) FROM messages WHERE conversation = ${conv} AND client_id = 'k1'`);
    assert.equal(k1, '1');

    // The agent's node goes too: the agent signs in on node 2 and has the chat back.
    bo.close();
    const bo2 = await agent(tokens.bo, n2);
    const back = await bo2.next((f) => f.type === 'assigned' && f.conversation === conv);
    assert.ok(back.transcript.some((m) => m.text === 'after the crash'));
    bo2.send({ type: 'message', conversation: conv, id: 'b4', text: 'from node 2 now' });
    const b4 = await c2.next((f) => f.type === 'agent_message');
    assert.equal(b4.text, 'from node 2 now');
    c2.close();
    bo2.close();
  });

// A REST call to node: its status and parsed JSON body.
async function api(node, method, p, token, body) {
  const r = await rest(node.url, method, p, { token, body });
  return { status: r.status, body: r.json };
}

// Polls fn until it returns a truthy value, for at most ms.
const within = (ms, fn) => waitFor(fn, { timeoutMs: ms });

test('a customer in two tabs on two nodes asks the bot through both: each question stored and answered once, seqs without gaps',
  async () => {
    const [, n2, n3] = nodes;
    const a = await customer(n2, { type: 'hello', lang: 'en', name: 'Tab' });
    const conv = a.welcome.conversation;
    const r1 = await ask(a, 't1', 'how do I reset my password');
    assert.equal(r1.type, 'reply');
    const b = await customer(n3, { type: 'hello', token: a.welcome.token, last_seq: r1.seq });
    assert.equal(b.welcome.conversation, conv);
    // Alternating tabs: each node's idea of the conversation's last seq is often behind the
    // other's writes; the store's counter decides and nothing is stored twice.
    const questions = ['where is my order', 'how long does shipping take', 'can I return an item',
      'how do I change my password', 'track my package', 'what is your returns policy',
      'do you ship abroad', 'how much is delivery'];
    const asked = ['t1'];
    for (let i = 2; i <= 9; i++) {
      const tab = i % 2 ? a : b;
      const r = await ask(tab, `t${i}`, questions[i - 2]);
      assert.equal(r.type, 'reply', JSON.stringify(r));
      asked.push(`t${i}`);
    }
    // A question sent again through the other tab gets the same answer, stored once.
    const again = await ask(a, 't4', questions[2]);
    assert.equal(again.type, 'reply');
    const seqs = psql(db, `SELECT string_agg(seq::text, ',' ORDER BY seq) FROM messages WHERE conversation = ${conv}`)
      .split(',').map(Number);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    for (const id of asked) {
      assert.equal(psql(db, `SELECT count(*) FROM messages WHERE conversation = ${conv} AND client_id = '${id}'`), '1', id);
      assert.equal(psql(db, `SELECT count(*) FROM messages WHERE conversation = ${conv} AND reply_to = '${id}'`), '1', id);
    }
    assert.equal(again.seq, Number(psql(db,
      `SELECT seq FROM messages WHERE conversation = ${conv} AND reply_to = 't4'`)));
    a.close();
    b.close();
  });

test('a KB edit on node 2 is found by a search on node 3 within a second, ranked as on node 2; a node started later has it too',
  async () => {
    const [, n2, n3] = nodes;
    tokens.author = tokens.author || await addUser(db, 'Ada', 'author');
    const article = {
      title: 'Washing zebra-striped upholstery',
      body: 'Use cold water and a soft brush on zebra stripes.\n\nNever bleach the black stripes.',
      questions: ['how do I wash zebra stripes'],
      tags: ['care'],
    };
    const t0 = Date.now();
    const put = await api(n2, 'PUT', '/api/articles/zebra-care', tokens.author, article);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const q = `/api/search?q=${encodeURIComponent('wash zebra stripes')}`;
    const hit = await within(2000, async () => {
      const r = await api(n3, 'GET', q, tokens.author);
      return r.body.hits && r.body.hits.find((h) => h.id === 'zebra-care') ? r.body.hits : null;
    });
    const ms = Date.now() - t0;
    assert.ok(hit, 'the article reached node 3');
    assert.ok(ms < 1000, `reached node 3 after ${ms} ms`);
    const onN2 = (await api(n2, 'GET', q, tokens.author)).body.hits;
    assert.deepEqual(hit.map((h) => [h.id, h.score, h.passage]), onN2.map((h) => [h.id, h.score, h.passage]));

    // Teaching on node 3 reaches node 2's index too (the learned phrasing ranks there).
    const taught = await api(n3, 'POST', '/api/learn', tokens.author,
      { question: 'my sofa has stripes and needs cleaning', article: 'zebra-care' });
    assert.equal(taught.status, 200, JSON.stringify(taught.body));
    const q2 = `/api/search?q=${encodeURIComponent('my sofa has stripes and needs cleaning')}`;
    const onN3 = (await api(n3, 'GET', q2, tokens.author)).body.hits;
    assert.equal(onN3[0].id, 'zebra-care');
    const ranks = (hits) => JSON.stringify(hits.map((h) => [h.id, h.score]));
    // Node 2 may rank the article first before the phrasing arrives: wait for the same scores.
    const learned = await within(2000, async () => {
      const r = await api(n2, 'GET', q2, tokens.author);
      return r.body.hits && ranks(r.body.hits) === ranks(onN3) ? r.body.hits : null;
    });
    assert.ok(learned, 'the learned phrasing reached node 2 and ranks as on node 3');
    assert.ok(learned[0].score > 0.5, `a learned phrasing matches closely (${learned[0].score})`);

    // A node that starts now replays the journal: same article, same rank.
    const n4 = await startServer({ ...fixtures, db });
    try {
      const r4 = (await api(n4, 'GET', q2, tokens.author)).body.hits;
      assert.deepEqual(r4.map((h) => [h.id, h.score]), onN3.map((h) => [h.id, h.score]));
      const del = await api(n4, 'DELETE', '/api/articles/zebra-care', tokens.author);
      assert.equal(del.status, 200);
      const gone = await within(2000, async () => {
        const r = await api(n2, 'GET', q, tokens.author);
        return !r.body.hits.some((h) => h.id === 'zebra-care');
      });
      assert.ok(gone, 'the delete reached node 2');
    } finally {
      await n4.stop();
    }
  });

test('caredesk import --db postgresql://... reaches every running node', async () => {
  const [, n2, n3] = nodes; // node 1 was killed above
  const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-import-'));
  writeFileSync(path.join(dir, 'gift-wrap.md'), [
    '---', 'id: gift-wrap', 'title: Gift wrapping for orders', 'questions:',
    '  - can you gift wrap my order', '---', '',
    'Tick "gift wrap" at checkout; we wrap it in recycled paper.', ''].join('\n'));
  try {
    const r = await runCaredesk(['import', '--db', db, dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /caredesk@/, 'the URI is not repeated');
    for (const n of [n2, n3]) {
      const found = await within(2000, async () => {
        const res = await api(n, 'GET', `/api/search?q=${encodeURIComponent('gift wrap my order')}`, tokens.author);
        return res.body.hits && res.body.hits.some((h) => h.id === 'gift-wrap');
      });
      assert.ok(found, `node ${n.port} has the imported article`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an agent whose node dies and who does not come back: the chat goes back to the queue on the nodes still up',
  async () => {
    // Two nodes of their own with a 2 s grace period, so the test does not wait 30 s.
    const nA = await startServer({ ...fixtures, db, args: ['--agent-grace', '2'] });
    const nB = await startServer({ ...fixtures, db, args: ['--agent-grace', '2'] });
    try {
      const dee = await addUser(db, 'Dee', 'agent', 'general,orders,billing,accounts,technical');
      const agentA = await openAgent(nA, dee);
      const [c, conv] = await queuedCustomer(nB, 'Lou');
      await agentA.next(inQueue(conv));
      agentA.send({ type: 'claim', conversation: conv });
      await agentA.next((f) => f.type === 'assigned' && f.conversation === conv);
      await c.next((f) => f.type === 'agent_joined');
      await nA.kill();
      // The customer hears that the chat is waiting again, and an agent on node B sees it.
      const requeued = await c.next((f) => f.type === 'queued', { timeoutMs: 15000 });
      assert.ok(requeued.position >= 1);
      const ana = await openAgent(nB, tokens.ana);
      assert.ok(ana.ready.queue.some((i) => i.conversation === conv), 'back in the queue');
      assert.equal(psql(db, `SELECT state FROM conversations WHERE id = ${conv}`), 'queued');
      // One node requeued it, once.
      assert.equal(psql(db, `SELECT count(*) FROM messages WHERE conversation = ${conv}`
        + ` AND meta LIKE '%agent_left%'`), '1');
      ana.close();
      c.close();
    } finally {
      await nB.stop();
      await nA.stop();
    }
  });
