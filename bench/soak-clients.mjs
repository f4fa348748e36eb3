// Conversation lifecycles for `make soak` (bench/soak.sh), beside the C load
// generator's steady question traffic: customers connect, ask, some ask for a
// person, drop the connection and come back with token and last_seq; agents
// claim, reply and close with a wrap-up. Prints one line per minute (counts,
// latency p50/p99 of first answers, errors) and a JSON summary at the end.
//
//   node bench/soak-clients.mjs PORT SECONDS RATE AGENT_TOKEN...
//   RATE = new conversations per second
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/integration/package.json', import.meta.url));
const WebSocket = require('ws');

const [port, seconds, rate, ...agentTokens] = process.argv.slice(2);
const url = `ws://127.0.0.1:${port}`;
const end = Date.now() + Number(seconds) * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const minute = { started: 0, answered: 0, handoffs: 0, resumes: 0, agentReplies: 0, closes: 0,
  errors: 0, lat: [] };
const total = { ...minute, lat: undefined };
const errors = new Map();

function error(what) {
  minute.errors++;
  total.errors++;
  errors.set(what, (errors.get(what) || 0) + 1);
}

function count(key, n = 1) { minute[key] += n; total[key] += n; }

function open(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url + path);
    const frames = [];
    const waiters = [];
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      frames.push(f);
      for (const w of [...waiters]) if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f); }
    });
    ws.on('error', (e) => reject(e));
    ws.on('open', () => resolve({
      ws, frames,
      send: (o) => ws.send(JSON.stringify(o)),
      next: (pred, ms = 10000) => new Promise((res, rej) => {
        const hit = frames.find(pred);
        if (hit) { frames.splice(frames.indexOf(hit), 1); return res(hit); }
        const w = { pred, resolve: res };
        waiters.push(w);
        setTimeout(() => { if (waiters.includes(w)) { waiters.splice(waiters.indexOf(w), 1); rej(new Error('timeout')); } }, ms);
      }),
      close: () => ws.close(),
    }));
  });
}

const QUESTIONS = ['How do I return a pair of shoes?', 'where is my order', 'when will my refund arrive',
  'what shipping options do you have', 'I forgot my password', 'can I cancel my order'];

async function customer(n) {
  count('started');
  let step = 'connect';
  try {
    let c = await open('/chat');
    c.send({ type: 'hello', lang: 'en', name: `soak${n}`, email: `soak${n % 50}@example.com` });
    step = 'welcome';
    const w = await c.next((f) => f.type === 'welcome');
    step = 'first answer';
    const t0 = Date.now();
    c.send({ type: 'message', id: 'q1', text: QUESTIONS[n % QUESTIONS.length] });
    const r = await c.next((f) => (f.type === 'reply' || f.type === 'ack') && f.reply_to === 'q1');
    minute.lat.push(Date.now() - t0);
    count('answered');
    let lastSeq = r.seq;
    if (n % 3 === 0) {
      step = 'handoff';
      c.send({ type: 'handoff' });
      await c.next((f) => f.type === 'queued' || (f.type === 'error' && f.code === 'bad_state'));
      count('handoffs');
    }
    await sleep(500 + (n % 7) * 400);
    c.close();
    if (n % 2 === 0) {
      await sleep(300);
      step = 'resume';
      c = await open('/chat');
      c.send({ type: 'hello', token: w.token, last_seq: lastSeq });
      await c.next((f) => f.type === 'welcome');
      step = 'answer after resume';
      count('resumes');
      c.send({ type: 'message', id: 'q2', text: 'thanks, one more question: do you ship abroad?' });
      // An agent may have closed the chat meanwhile: then the answer is bad_state.
      const a2 = await c.next((f) => ((f.type === 'reply' || f.type === 'ack') && f.reply_to === 'q2')
        || (f.type === 'error' && f.code === 'bad_state'));
      if (a2.type !== 'error') count('answered');
      await sleep(300);
      if (n % 4 === 0) c.send({ type: 'close' });
      c.close();
    }
  } catch (e) {
    error(`customer ${step}: ${e.message}`);
  }
}

async function agent(token, k) {
  while (Date.now() < end) {
    try {
      const a = await open('/agent');
      let nextId = 0;
      a.ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.type === 'queue') {
          for (const it of f.items.slice(0, 1)) a.send({ type: 'claim', conversation: it.conversation });
        } else if (f.type === 'assigned') {
          const conv = f.conversation;
          a.send({ type: 'message', conversation: conv, id: `r${nextId++}`, text: 'Hi, I can help with that.' });
          setTimeout(() => a.send({ type: 'close', conversation: conv, disposition: 'soak', note: 'ok' }), 1500);
        } else if (f.type === 'ack') {
          count('agentReplies');
        } else if (f.type === 'closed') {
          count('closes');
        } else if (f.type === 'error' && !['already_claimed', 'at_capacity', 'not_assigned',
          'not_found'].includes(f.code)) {
          error(`agent: ${f.code}`);
        }
      });
      a.send({ type: 'auth', token });
      await new Promise((r) => { a.ws.on('close', r); setTimeout(r, Math.max(0, end - Date.now())); });
      a.close();
    } catch (e) {
      error(`agent ${k}: ${e.message}`);
      await sleep(1000);
    }
  }
}

function pct(arr, p) {
  if (!arr.length) return 0;
  const s = [...arr].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

const start = Date.now();
const agents = agentTokens.map((t, k) => agent(t, k));
const timer = setInterval(() => {
  const m = Math.round((Date.now() - start) / 60000);
  console.log(`lifecycles minute ${m}: started ${minute.started}, answered ${minute.answered}, `
    + `handoffs ${minute.handoffs}, resumes ${minute.resumes}, agent replies ${minute.agentReplies}, `
    + `closes ${minute.closes}, first-answer p50 ${pct(minute.lat, 0.5)} ms p99 ${pct(minute.lat, 0.99)} ms, `
    + `errors ${minute.errors}`);
  for (const k of Object.keys(minute)) minute[k] = k === 'lat' ? [] : 0;
}, 60000);
const running = new Set();
let n = 0;
while (Date.now() < end) {
  const p = customer(n++).finally(() => running.delete(p));
  running.add(p);
  await sleep(1000 / Number(rate));
}
await Promise.all(running);
clearInterval(timer);
await Promise.race([Promise.all(agents), sleep(3000)]);
console.log(JSON.stringify({ lifecycles: total, errors: Object.fromEntries(errors) }));
process.exit(0);
