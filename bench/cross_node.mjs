// Cross-node delivery: customers on one node, an agent on another, both on one PostgreSQL.
// The agent sends messages at a fixed total rate, round-robin over the conversations; each
// customer timestamps what arrives. Prints one JSON line: sent, received, lost, duplicated,
// out of order, and the delivery latency p50/p99/max in ms (agent send -> customer receive,
// one process, one monotonic clock).
//
//   node bench/cross_node.mjs --customers ws://127.0.0.1:P1 --agent ws://127.0.0.1:P3 \
//        --tokens T1,T2,T3,T4 --conversations 20 --rate 1000 --seconds 5
// The conversations are dealt to the agents (one token each); an agent keeps at most 64 of
// its messages unacknowledged, as a console would (a send waits for room), so the offered
// rate is met only while the server keeps up ("late" counts sends that had to wait).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const WebSocket = require('ws');

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const N = Number(args.conversations || 20);
const RATE = Number(args.rate || 1000);
const SECONDS = Number(args.seconds || 5);
const now = () => Number(process.hrtime.bigint()) / 1e6;
// Numbers travel as letters: the server masks long digit runs (card and phone numbers).
const enc = (x) => String(x).replace(/[0-9]/g, (d) => 'abcdefghij'[d]);
const dec = (s) => Number(s.replace(/[a-j]/g, (l) => l.charCodeAt(0) - 97));

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.frames = [];
    ws.waiters = [];
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (ws.onframe) ws.onframe(f);
      ws.frames.push(f);
      ws.waiters = ws.waiters.filter((w) => !w());
    });
    ws.next = (pred, ms = 15000) => new Promise((res, rej) => {
      const check = () => {
        const i = ws.frames.findIndex(pred);
        if (i < 0) return false;
        res(ws.frames.splice(i, 1)[0]);
        return true;
      };
      if (check()) return;
      const t = setTimeout(() => rej(new Error('timed out waiting for a frame')), ms);
      ws.waiters.push(() => { if (check()) { clearTimeout(t); return true; } return false; });
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const customers = [];
for (let i = 0; i < N; i++) {
  const c = await open(`${args.customers}/chat`);
  c.send(JSON.stringify({ type: 'hello', lang: 'en', name: `Bench ${i}` }));
  c.welcome = await c.next((f) => f.type === 'welcome');
  c.send(JSON.stringify({ type: 'handoff' }));
  await c.next((f) => f.type === 'queued');
  customers.push(c);
}
const tokens = (args.tokens || args.token).split(',');
const agents = [];
for (const token of tokens) {
  const a = await open(`${args.agent}/agent`);
  a.send(JSON.stringify({ type: 'auth', token }));
  await a.next((f) => f.type === 'ready');
  a.unacked = 0;
  agents.push(a);
}
const byConv = new Map(customers.map((c) => [c.welcome.conversation, c]));
const owner = new Map();
let k = 0;
for (const conv of byConv.keys()) {
  const agent = agents[k++ % agents.length];
  // The chat queued on the customers' node reaches the agent's node first.
  await agent.next((f) => f.type === 'queue' && f.items.some((i) => i.conversation === conv));
  agent.send(JSON.stringify({ type: 'claim', conversation: conv }));
  await agent.next((f) => f.type === 'assigned' && f.conversation === conv);
  owner.set(conv, agent);
}
for (const c of customers) await c.next((f) => f.type === 'agent_joined');

const lat = [];
let received = 0, dup = 0, disorder = 0;
for (const c of customers) {
  c.seen = new Set();
  c.last = 0;
  c.frames = [];
  c.onframe = (f) => {
    if (f.type !== 'agent_message') return;
    const [n, t] = f.text.split(' ').map(dec);
    if (c.seen.has(n)) { dup++; return; }
    c.seen.add(n);
    if (f.seq < c.last) disorder++;
    c.last = f.seq;
    received++;
    lat.push(now() - t / 1000);
  };
}
let agentErrors = 0;
let agentClosed = null;
for (const agent of agents) {
  agent.frames = [];
  agent.onframe = (f) => {
    if (f.type === 'ack') agent.unacked--;
    if (f.type === 'error') { agentErrors++; agent.unacked--; if (agentErrors < 3) console.error(JSON.stringify(f)); }
  };
  agent.on('close', (code, reason) => { agentClosed = `${code} ${reason}`; });
}
const convs = [...byConv.keys()];
let sent = 0, late = 0;
const start = now();
await new Promise((resolve) => {
  const tick = () => {
    const due = Math.floor(((now() - start) / 1000) * RATE);
    while (sent < due) {
      const conv = convs[sent % convs.length];
      const agent = owner.get(conv);
      if (agent.unacked >= 64) { late++; break; }
      agent.unacked++;
      agent.send(JSON.stringify({ type: 'message', conversation: conv, id: `b${sent}`,
        text: `${enc(sent)} ${enc(Math.round(now() * 1000))}` }));
      sent++;
    }
    if (now() - start >= SECONDS * 1000) resolve();
    else setTimeout(tick, 1);
  };
  tick();
});
const deadline = now() + 5000;
while (received + dup < sent && now() < deadline) await new Promise((r) => setTimeout(r, 20));
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
console.log(JSON.stringify({
  conversations: N, agents: agents.length, rate_target: RATE, seconds: SECONDS, sent, late,
  received, lost: sent - received,
  duplicated: dup, out_of_order: disorder, agent_errors: agentErrors, agent_closed: agentClosed, msgs_per_s: received / SECONDS,
  p50_ms: +q(0.5).toFixed(2), p99_ms: +q(0.99).toFixed(2), max_ms: +(lat[lat.length - 1] || 0).toFixed(2),
}));
for (const c of customers) c.close();
for (const a of agents) a.close();
