// Crash safety of the real server: many customers and a few agents talk in a
// closed loop while the server is killed with SIGKILL at random moments and
// restarted on the same database. Proves, from the clients' side and then
// from the database:
// - every customer message that got a `reply` or `ack`, and every agent
//   message that got an `ack`, is in the transcript at the seq the client was
//   told, exactly once, in the order sent;
// - re-sending an unanswered message (same id) after a crash never stores it
//   twice and gets exactly one answer;
// - a client that resumes with `hello {token, last_seq}` gets every message
//   after last_seq, in order, each once, seqs without gaps, up to the seq in
//   `welcome`; a full replay equals the stored transcript;
// - seqs in every conversation are 1..n without gaps, and PRAGMA
//   integrity_check (sqlite3 CLI, or caredesk export if the CLI is missing)
//   is ok after the crashes.
// And with the database on a small tmpfs that fills up (where the machine
// lets the test mount one): messages get `store_failed`, nothing answered is
// lost, the server stays up and recovers when space returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startServer, runCaredesk, fixtures, addUser } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { sqlite, hasSqliteCli } from './lib/sqlite.mjs';
import { sleep } from './lib/wait.mjs';

const N_CUSTOMERS = 40;
const N_AGENTS = 3;
const N_KILLS = 4;
// Conversations stay under the server's per-connection frame queue
// (--max-queued-frames, 256), which a full replay must fit in (see the
// test below).
const MAX_CUSTOMER_MESSAGES = 60;
const MAX_AGENT_MESSAGES = 40;
const rand = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo));

const TEXTS = [
  'How do I return a pair of shoes?',
  'where is my order',
  'what shipping options do you have',
  'my card 4242 4242 4242 4242 was charged',
  'I want to talk to a person',
  'thanks!',
];

// What customers and agents share: a name for problems, and a loop that
// reconnects after a short pause until stop().
class Client {
  constructor(world, n, kind) {
    this.world = world;
    this.n = n;
    this.kind = kind;
    this.ws = null;
    this.stopped = false;
    this.problems = [];
  }

  problem(what) { this.problems.push(`${this.kind} ${this.n}: ${what}`); }

  async run() {
    while (!this.stopped) {
      try {
        await this.session();
      } catch { /* server gone: reconnect */ }
      if (!this.stopped) await sleep(rand(20, 120));
    }
  }

  // A websocket to path on the server as it is now, kept as this.ws.
  open(path) {
    this.ws = new WebSocket(`${this.world.wsUrl}${path}`);
    return this.ws;
  }

  stop() {
    this.stopped = true;
    try { this.ws?.close(); } catch { /* */ }
  }
}

// A client that survives server restarts: (re)connects to world.url, resumes
// with its token and last seq, and checks every replay.
class Customer extends Client {
  constructor(world, n) {
    super(world, n, 'customer');
    this.token = null;
    this.conversation = 0;
    this.lastSeq = 0;      // highest seq seen in any frame
    this.seen = new Map(); // seq -> frame type, everything the client was shown
    this.sent = [];        // { id, seq, kind } in the order sent; seq once answered
    this.pending = null;   // the sent entry waiting for its answer
    this.nextId = 0;
    this.resumes = 0;
  }

  // One connection: hello, then messages until the socket dies or we stop.
  session() {
    return new Promise((resolve, reject) => {
      const ws = this.open('/chat');
      let welcomed = false;
      let replayDone = false;
      let expectSeq = 0;
      let welcomeSeq = 0;
      const fail = (e) => { try { ws.terminate(); } catch { /* */ } reject(e); };
      ws.on('error', fail);
      ws.on('close', () => resolve());
      ws.on('open', () => {
        const hello = { type: 'hello', lang: 'en', name: `c${this.n}` };
        if (this.token) Object.assign(hello, { token: this.token, last_seq: this.lastSeq });
        ws.send(JSON.stringify(hello));
      });
      const sendNext = () => {
        if (this.stopped || ws.readyState !== WebSocket.OPEN) return;
        if (!this.pending) {
          if (this.nextId >= MAX_CUSTOMER_MESSAGES) return;
          const id = `m${this.nextId++}`;
          this.pending = { id, seq: 0, kind: null, answers: 0, text: TEXTS[rand(0, TEXTS.length)] };
          this.sent.push(this.pending);
        }
        ws.send(JSON.stringify({ type: 'message', id: this.pending.id, text: this.pending.text }));
      };
      ws.on('message', (data) => {
        let f;
        try { f = JSON.parse(data.toString()); } catch { this.problem(`bad JSON ${data}`); return; }
        if (f.type === 'welcome') {
          if (welcomed) this.problem('two welcomes');
          welcomed = true;
          if (this.token && f.conversation !== this.conversation) {
            this.problem(`resumed into conversation ${f.conversation}, not ${this.conversation}`);
          }
          if (!this.token) {
            this.token = f.token;
            this.conversation = f.conversation;
          } else {
            this.resumes++;
          }
          if (f.seq < this.lastSeq) this.problem(`welcome seq ${f.seq} < seen ${this.lastSeq}`);
          welcomeSeq = f.seq;
          expectSeq = this.lastSeq + 1;
          if (expectSeq > welcomeSeq) {
            replayDone = true;
            sendNext();
          }
          return;
        }
        if (!welcomed && f.type !== 'error') this.problem(`${f.type} before welcome`);
        if (typeof f.seq === 'number') {
          if (!replayDone) {
            // Replay: every seq after last_seq up to welcome's, in order, once.
            if (f.seq !== expectSeq) this.problem(`replay gave seq ${f.seq}, expected ${expectSeq}`);
            expectSeq = f.seq + 1;
            if (f.type === 'customer_message') this.checkReplayedOwn(f);
          } else if (f.type !== 'reply' && f.type !== 'ack' && f.seq <= this.lastSeq) {
            this.problem(`live ${f.type} seq ${f.seq} after seq ${this.lastSeq}`);
          }
          this.seen.set(f.seq, f.type);
          if (f.seq > this.lastSeq) this.lastSeq = f.seq;
        }
        if ((f.type === 'reply' || f.type === 'ack') && f.reply_to) {
          const m = this.sent.find((s) => s.id === f.reply_to);
          if (!m) { this.problem(`answer to unknown id ${f.reply_to}`); return; }
          if (m.seq && m.seq !== f.seq) this.problem(`${m.id} answered twice: seq ${m.seq} and ${f.seq}`);
          m.seq = f.seq;
          m.kind = f.type;
          m.answers++;
          if (this.pending === m) {
            this.pending = null;
            this.world.answered++;
            if (replayDone) setTimeout(sendNext, rand(30, 250));
          }
        } else if (f.type === 'error') {
          if (!replayDone) this.problem(`error ${f.code} during the replay`);
          if (f.code === 'store_failed' || f.code === 'rate_limited') setTimeout(sendNext, 50);
          else if (f.code !== 'bad_state') this.problem(`error ${f.code}: ${f.message}`);
          else this.stopped = true; // closed conversation: nothing more to say
        }
        if (!replayDone && typeof f.seq === 'number' && f.seq >= welcomeSeq) {
          replayDone = true; // later frames are live
          sendNext();
        }
      });
    });
  }

  checkReplayedOwn(f) {
    const m = this.sent.find((s) => s.id === f.id);
    if (!m) this.problem(`replayed a message id ${f.id} never sent`);
  }
}

class Agent extends Client {
  constructor(world, n, token) {
    super(world, n, 'agent');
    this.token = token;
    this.agentId = 0;
    this.chats = new Set();
    this.sent = []; // { conversation, id, seq }
    this.pending = null;
    this.nextId = 0;
  }

  session() {
    return new Promise((resolve, reject) => {
      const ws = this.open('/agent');
      let timer = null;
      ws.on('error', (e) => { clearInterval(timer); reject(e); });
      ws.on('close', () => { clearInterval(timer); resolve(); });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: this.token })));
      const tick = () => {
        if (ws.readyState !== WebSocket.OPEN || this.stopped || this.chats.size === 0) return;
        if (!this.pending) {
          if (this.nextId >= MAX_AGENT_MESSAGES) return;
          const chats = [...this.chats];
          this.pending = { conversation: chats[rand(0, chats.length)], id: `a${this.nextId++}`, seq: 0 };
          this.sent.push(this.pending);
        }
        ws.send(JSON.stringify({
          type: 'message', conversation: this.pending.conversation, id: this.pending.id,
          text: `agent ${this.n} says ${this.pending.id}`,
        }));
      };
      ws.on('message', (data) => {
        const f = JSON.parse(data.toString());
        if (f.type === 'ready') {
          this.agentId = f.agent.id;
          timer = setInterval(tick, 100);
        } else if (f.type === 'queue') {
          for (const it of f.items.slice(0, 2)) {
            ws.send(JSON.stringify({ type: 'claim', conversation: it.conversation }));
          }
        } else if (f.type === 'assigned') {
          this.chats.add(f.conversation);
        } else if (f.type === 'ack') {
          const m = this.sent.find((s) => s.conversation === f.conversation && s.id === f.reply_to);
          if (!m) { this.problem(`ack for unknown ${f.reply_to}`); return; }
          if (m.seq && m.seq !== f.seq) this.problem(`${m.id} acked twice: ${m.seq}, ${f.seq}`);
          m.seq = f.seq;
          if (this.pending === m) this.pending = null;
        } else if (f.type === 'error') {
          if (f.code === 'not_assigned' && this.pending) {
            // The chat went back to the queue while we were away: drop it.
            this.chats.delete(this.pending.conversation);
            this.sent = this.sent.filter((s) => s !== this.pending);
            this.pending = null;
          } else if (!['already_claimed', 'at_capacity', 'store_failed', 'not_found',
            'rate_limited'].includes(f.code)) {
            this.problem(`error ${f.code}: ${f.message}`);
          }
        } else if (f.type === 'customer_left' || f.type === 'transferred' || f.type === 'closed') {
          if (f.type !== 'customer_left') this.chats.delete(f.conversation);
        }
      });
    });
  }
}

test('kill -9 under load, restart on the same database: nothing acknowledged is lost',
  { timeout: 90000 }, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-crash-'));
    const db = path.join(dir, 'caredesk.db');
    const opts = { ...fixtures, dir, args: ['--rate-limit', '0'], quiet: true };
    let srv = await startServer(opts);
    if (srv.events('chat_unavailable').length) {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
      t.skip('this build has no chat module');
      return;
    }
    const world = { wsUrl: srv.wsUrl, answered: 0 };
    const tokens = [];
    for (let i = 0; i < N_AGENTS; i++) tokens.push(await addUser(db, `agent${i}`, 'agent'));
    const customers = Array.from({ length: N_CUSTOMERS }, (_, i) => new Customer(world, i));
    const agents = tokens.map((t, i) => new Agent(world, i, t));
    const runs = [...customers, ...agents].map((c) => c.run());

    try {
      const answeredAtKill = [];
      for (let k = 0; k < N_KILLS; k++) {
        await sleep(rand(600, 1800));
        answeredAtKill.push(world.answered);
        await srv.kill();
        srv = await startServer(opts);
        world.wsUrl = srv.wsUrl;
      }
      // Let everyone reconnect and get their outstanding message answered.
      await sleep(1500);
      for (const c of [...customers, ...agents]) c.stop();
      await Promise.race([Promise.all(runs), sleep(5000)]);
      assert.ok(answeredAtKill.every((n, i) => i === 0 || n >= answeredAtKill[i - 1]));
      assert.ok(world.answered > N_CUSTOMERS * 5, `only ${world.answered} answers`);
      const problems = [...customers, ...agents].flatMap((c) => c.problems);
      assert.deepEqual(problems, []);
      const resumes = customers.reduce((n, c) => n + c.resumes, 0);
      const agentAcks = agents.reduce((n, a) => n + a.sent.filter((s) => s.seq).length, 0);
      t.diagnostic(`customer messages answered at each kill: ${answeredAtKill.join(', ')}`);
      t.diagnostic(`${N_KILLS} kills; ${world.answered} customer messages answered; `
        + `${resumes} resumes; ${agentAcks} agent messages acked`);
      assert.ok(resumes >= N_CUSTOMERS, `only ${resumes} resumes`);
      assert.ok(agentAcks > 0, 'no agent message was acknowledged');

      // A last full replay (last_seq 0) per customer, compared below with the database.
      const replays = new Map();
      await Promise.all(customers.filter((c) => c.token).map(async (c) => {
        const ws = new WebSocket(`${srv.wsUrl}/chat`);
        const frames = [];
        await new Promise((resolve, reject) => {
          let welcomeSeq = -1;
          const timer = setTimeout(() => {
            ws.terminate();
            reject(new Error(`customer ${c.n}: full replay stopped at seq `
              + `${frames.length ? frames[frames.length - 1].seq : 0} of ${welcomeSeq}`));
          }, 10000);
          ws.on('error', reject);
          ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', token: c.token, last_seq: 0 })));
          ws.on('message', (d) => {
            const f = JSON.parse(d.toString());
            if (f.type === 'welcome') welcomeSeq = f.seq;
            else if (typeof f.seq === 'number') frames.push(f);
            if (welcomeSeq >= 0 && (frames.length ? frames[frames.length - 1].seq : 0) >= welcomeSeq) {
              clearTimeout(timer);
              ws.close();
              resolve();
            }
          });
        });
        replays.set(c.conversation, frames);
      }));
      await srv.stop({ keepDir: true });

      const ok = hasSqliteCli() ? sqlite(db, 'PRAGMA integrity_check')[0].integrity_check : null;
      if (ok !== null) assert.equal(ok, 'ok');
      else t.diagnostic('no sqlite3 CLI: integrity_check skipped, transcripts read with export');
      const rows = hasSqliteCli()
        ? sqlite(db, 'SELECT conversation, seq, sender, client_id, reply_to FROM messages'
          + ' ORDER BY conversation, seq')
        : [];
      const byConv = new Map();
      for (const r of rows) {
        if (!byConv.has(r.conversation)) byConv.set(r.conversation, []);
        byConv.get(r.conversation).push(r);
      }
      if (rows.length === 0) {
        // No sqlite3 CLI: read each transcript with caredesk export.
        for (const c of customers.filter((x) => x.conversation)) {
          const r = await runCaredesk(['export', '--conversation', String(c.conversation), '--db', db]);
          assert.equal(r.code, 0, r.stderr);
          const conv = JSON.parse(r.stdout);
          byConv.set(c.conversation, conv.messages.map((m) => ({
            conversation: c.conversation, seq: m.seq, sender: m.sender,
            client_id: m.id ?? null, reply_to: m.reply_to, // export has no reply_to
          })));
        }
      }
      for (const [conv, msgs] of byConv) {
        msgs.forEach((m, i) => assert.equal(m.seq, i + 1, `conversation ${conv}: seq gap`));
      }
      for (const c of customers.filter((x) => x.conversation)) {
        const msgs = byConv.get(c.conversation) || [];
        let last = 0;
        for (const s of c.sent.filter((x) => x.seq)) {
          const own = msgs.filter((m) => m.sender === 'customer' && m.client_id === s.id);
          assert.equal(own.length, 1, `customer ${c.n} ${s.id}: stored ${own.length} times`);
          if (s.kind === 'ack') {
            assert.equal(own[0].seq, s.seq, `customer ${c.n} ${s.id}: ack seq`);
          } else {
            const reply = msgs[s.seq - 1];
            assert.ok(reply && reply.sender === 'bot'
              && (reply.reply_to === undefined || reply.reply_to === s.id),
              `customer ${c.n} ${s.id}: reply seq ${s.seq} is not the bot's answer`);
            assert.ok(own[0].seq < s.seq);
          }
          assert.ok(own[0].seq > last, `customer ${c.n} ${s.id}: out of order`);
          last = own[0].seq;
        }
        // The full replay is the stored transcript, in order, once.
        const replay = replays.get(c.conversation) || [];
        assert.deepEqual(replay.map((f) => f.seq), msgs.map((m) => m.seq),
          `customer ${c.n}: replay differs from the transcript`);
      }
      for (const a of agents) {
        for (const s of a.sent.filter((x) => x.seq)) {
          const msgs = byConv.get(s.conversation) || [];
          const stored = msgs.filter((m) => m.sender === 'agent' && m.seq === s.seq);
          assert.equal(stored.length, 1, `agent ${a.n} ${s.id}: not at seq ${s.seq}`);
          const same = msgs.filter((m) => m.sender === 'agent'
            && (m.client_id === s.id || m.client_id === `agent:${a.agentId}:${s.id}`));
          assert.equal(same.length, 1, `agent ${a.n} ${s.id}: stored ${same.length} times`);
        }
      }
    } finally {
      for (const c of [...customers, ...agents]) c.stop();
      await srv.stop({ keepDir: true }).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  });

// A resume must replay everything after last_seq however long the
// conversation is, even when the replay is longer than the outgoing queue a
// connection may hold (--max-queued-frames): every missed message exactly
// once, in order, and nothing dropped or the connection closed. The replay is
// paced to the queue (it goes on as the client reads), so no multiple of the
// queue bounds it: the last two cases are more than 64 queues long (the bound
// before the pacing was wired to the server's queue), the last at the smallest
// queue the setting allows.
for (const [queue, messages, atLeast] of [[64, 60, 64], [8, 300, 8 * 64], [4, 150, 4 * 64]]) test(
  `resume replays ${messages * 2}+ items through a queue of ${queue} (--max-queued-frames)`,
  { timeout: 90000 }, async (t) => {
  const srv = await startServer({ ...fixtures, args: ['--rate-limit', '0', '--max-queued-frames', String(queue)] });
  if (srv.events('chat_unavailable').length) {
    await srv.stop();
    t.skip('this build has no chat module');
    return;
  }
  try {
    const c = await connect(`${srv.wsUrl}/chat`);
    c.send({ type: 'hello' });
    const welcome = await c.next((f) => f.type === 'welcome');
    // The same question over and over hands the chat to the queue after a
    // few answers; later messages are stored (and acknowledged) all the same.
    for (let i = 0; i < messages; i++) {
      c.send({ type: 'message', id: `m${i}`, text: `where is my order ${i}` });
      await c.next((f) => (f.type === 'reply' || f.type === 'ack') && f.reply_to === `m${i}`);
    }
    await sleep(200);
    c.close();
    // The last stored item the first connection saw (the welcome carries the
    // conversation's seq at that time, it is not a stored item).
    const lastSeq = Math.max(...c.frames.filter((f) => f.type !== 'welcome' && typeof f.seq === 'number')
      .map((f) => f.seq));
    assert.ok(lastSeq > atLeast, `the conversation has more items (${lastSeq}) than ${atLeast}`);

    const r = await connect(`${srv.wsUrl}/chat`);
    r.send({ type: 'hello', token: welcome.token, last_seq: 0 });
    const w = await r.next((f) => f.type === 'welcome');
    assert.equal(w.seq, lastSeq);
    await r.next((f) => f.type !== 'welcome' && f.seq === lastSeq, { timeoutMs: 20000 });
    await sleep(300);
    const replayed = r.frames.filter((f) => f.type !== 'welcome' && typeof f.seq === 'number')
      .map((f) => f.seq);
    assert.deepEqual(replayed, Array.from({ length: lastSeq }, (_, i) => i + 1),
      'every missed item exactly once, in order');
    const customer = r.frames.filter((f) => f.type === 'customer_message').map((f) => f.id);
    assert.deepEqual(customer, Array.from({ length: messages }, (_, i) => `m${i}`));
    assert.equal(r.closed, null, 'the connection stays open');
    r.close();
  } finally {
    await srv.stop();
  }
});

// A closed conversation resumed through the smallest queue: the replay, then the
// rating request after it, and the connection stays open.
test('resume of a closed conversation through a queue of 4: replay, then rating_request', { timeout: 60000 }, async () => {
  const srv = await startServer({ ...fixtures, args: ['--rate-limit', '0', '--max-queued-frames', '4'] });
  try {
    const c = await connect(`${srv.wsUrl}/chat`);
    c.send({ type: 'hello' });
    const welcome = await c.next((f) => f.type === 'welcome');
    for (let i = 0; i < 6; i++) {
      c.send({ type: 'message', id: `m${i}`, text: `where is my order ${i}` });
      await c.next((f) => (f.type === 'reply' || f.type === 'ack') && f.reply_to === `m${i}`);
    }
    c.send({ type: 'close' });
    await c.next((f) => f.type === 'closed');
    await sleep(200);
    c.close();
    const lastSeq = Math.max(...c.frames.filter((f) => f.type !== 'welcome' && typeof f.seq === 'number')
      .map((f) => f.seq));
    // Whatever is left to replay: all of it, a few items, one.
    for (const from of [0, 3, lastSeq - 5, lastSeq - 3, lastSeq - 2, lastSeq - 1]) {
      const r = await connect(`${srv.wsUrl}/chat`);
      r.send({ type: 'hello', token: welcome.token, last_seq: from });
      await r.next((f) => f.type === 'welcome');
      await r.next((f) => f.type === 'rating_request', { timeoutMs: 10000 });
      const replayed = r.frames.filter((f) => f.type !== 'welcome' && typeof f.seq === 'number')
        .map((f) => f.seq);
      assert.deepEqual(replayed, Array.from({ length: lastSeq - from }, (_, i) => i + from + 1),
        `replayed after ${from}`);
      await sleep(100);
      assert.equal(r.closed, null, `the connection stays open (after ${from})`);
      r.close();
    }
  } finally {
    await srv.stop();
  }
});

test('disk full (a 4 MB tmpfs): store_failed, nothing answered lost, recovery when space returns',
  { timeout: 60000 }, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-full-'));
    const disk = path.join(dir, 'disk');
    mkdirSync(disk);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk], { stdio: 'ignore' });
    } catch {
      rmSync(dir, { recursive: true, force: true });
      return t.skip('cannot mount a tmpfs here (needs root); test_store_faults.c covers disk full');
    }
    let srv = null;
    try {
      const opts = { ...fixtures, dir, db: path.join(disk, 'caredesk.db'), quiet: true,
        args: ['--rate-limit', '0'] };
      srv = await startServer(opts);
      if (srv.events('chat_unavailable').length) return t.skip('this build has no chat module');
      const c = await connect(`${srv.wsUrl}/chat`);
      c.send({ type: 'hello' });
      const welcome = await c.next((f) => f.type === 'welcome');
      const answered = new Map(); // id -> seq
      const ask = async (id) => {
        c.send({ type: 'message', id, text: `where is my order ${id}? ${'x'.repeat(1500)}` });
        const f = await c.next((x) => ((x.type === 'reply' || x.type === 'ack') && x.reply_to === id)
          || (x.type === 'error' && x.code === 'store_failed'));
        if (f.type !== 'error') answered.set(id, f.seq);
        return f.type;
      };
      assert.equal(await ask('m0'), 'reply');
      // Fill the disk, then keep talking until the store refuses.
      const filler = path.join(disk, 'filler');
      let size = 0;
      try {
        for (;;) { writeFileSync(filler, Buffer.alloc(64 * 1024), { flag: 'a' }); size += 64 * 1024; }
      } catch { /* ENOSPC: full */ }
      let failedId = null;
      for (let i = 1; i < 400 && !failedId; i++) {
        if (await ask(`m${i}`) === 'error') failedId = `m${i}`;
      }
      assert.ok(failedId, `no store_failed after filling ${size} bytes`);
      t.diagnostic(`disk full after ${answered.size} answers; ${failedId} got store_failed`);
      assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
      // Another customer is told the same, and the server stays up.
      const other = await connect(`${srv.wsUrl}/chat`);
      other.send({ type: 'hello' });
      const o = await other.next((f) => f.type === 'welcome' || f.type === 'error');
      assert.ok(o.type === 'error' ? o.code === 'store_failed' : true);
      other.close();
      // Space returns: the same message (same id) is stored once, and talk goes on.
      unlinkSync(filler);
      const again = await ask(failedId);
      assert.notEqual(again, 'error', 'still failing after space returned');
      assert.notEqual(await ask('after'), 'error');
      c.close();
      await srv.stop({ keepDir: true });
      srv = await startServer(opts);
      const r = await connect(`${srv.wsUrl}/chat`);
      r.send({ type: 'hello', token: welcome.token, last_seq: 0 });
      const w = await r.next((f) => f.type === 'welcome');
      const seqs = [];
      const own = new Map();
      while (seqs.length < w.seq) {
        const f = await r.next((x) => typeof x.seq === 'number');
        seqs.push(f.seq);
        if (f.type === 'customer_message') own.set(f.id, (own.get(f.id) || 0) + 1);
      }
      assert.deepEqual(seqs, Array.from({ length: w.seq }, (_, i) => i + 1));
      for (const id of answered.keys()) assert.equal(own.get(id), 1, `${id} stored ${own.get(id) || 0} times`);
      r.close();
      await srv.stop({ keepDir: true });
      srv = null;
      if (hasSqliteCli()) {
        assert.equal(sqlite(path.join(disk, 'caredesk.db'), 'PRAGMA integrity_check')[0].integrity_check, 'ok');
      }
    } finally {
      if (srv) await srv.stop({ keepDir: true }).catch(() => {});
      try { execFileSync('umount', [disk], { stdio: 'ignore' }); } catch { /* */ }
      rmSync(dir, { recursive: true, force: true });
    }
  });
