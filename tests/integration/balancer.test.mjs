// Three nodes on one PostgreSQL behind HAProxy (Debian's haproxy, configured as in
// docs/scaling.md: websocket upgrades, least connections, /healthz checks): customers connect
// through the balancer only; when the node a customer is on is killed, the customer reconnects
// through the balancer, lands on another node and resumes with nothing lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, fixtures, addUser } from './lib/server.mjs';
import { openCustomer } from './lib/client.mjs';
import { pgDatabase } from './lib/pg.mjs';
import { sleep } from './lib/wait.mjs';

let db;
let dir;
let haproxy;
let lbPort;
const nodes = [];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// The node a conversation's customer is connected to: the one whose /healthz counts it.
async function connectionsPerNode() {
  return Promise.all(nodes.map(async (n) => {
    try {
      const h = await (await fetch(`${n.url}/healthz`)).json();
      return h.connections;
    } catch {
      return -1;
    }
  }));
}

before(async () => {
  db = await pgDatabase('balancer');
  for (let i = 0; i < 3; i++) nodes.push(await startServer({ ...fixtures, db }));
  lbPort = await freePort();
  dir = mkdtempSync(path.join(tmpdir(), 'caredesk-haproxy-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, [
    'global',
    '  maxconn 1000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 1h',
    '  timeout server 1h',
    '  timeout tunnel 1h',
    'frontend caredesk',
    `  bind 127.0.0.1:${lbPort}`,
    '  default_backend nodes',
    'backend nodes',
    '  balance leastconn',
    '  option httpchk GET /healthz',
    '  http-check expect status 200',
    ...nodes.map((n, i) => `  server n${i + 1} 127.0.0.1:${n.port} check inter 200ms fall 1 rise 1`),
    ''].join('\n'));
  execFileSync('haproxy', ['-c', '-q', '-f', cfg]);
  haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${lbPort}/healthz`)).ok) break;
    } catch { /* not yet */ }
    await sleep(100);
  }
});

after(async () => {
  if (haproxy) haproxy.kill('SIGKILL');
  for (const n of nodes) await n.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('through HAProxy: customers spread over the nodes; the node of one dies and it resumes on another',
  async () => {
    const lb = { wsUrl: `ws://127.0.0.1:${lbPort}` };
    const customers = [];
    for (let i = 0; i < 3; i++) {
      customers.push(await openCustomer(lb, { type: 'hello', lang: 'en', name: `Via LB ${i}` }));
    }
    const per = await connectionsPerNode();
    assert.deepEqual(per, [1, 1, 1], `least connections spreads them: ${per}`);

    const c = customers[0];
    c.send({ type: 'message', id: 'q1', text: 'how do I reset my password' });
    const r1 = await c.next((f) => f.type === 'reply' && f.reply_to === 'q1');
    // Which node is it on? Close the others and look.
    for (const o of customers.slice(1)) o.close();
    await sleep(200);
    const mine = (await connectionsPerNode()).findIndex((n) => n === 1);
    assert.ok(mine >= 0);
    await nodes[mine].kill();
    await c.whenClosed();

    // The balancer's check takes the dead node out; the customer comes back through it.
    let c2;
    for (let i = 0; i < 30 && !c2; i++) {
      try {
        c2 = await openCustomer(lb, { type: 'hello', token: c.welcome.token, last_seq: 0 });
      } catch { await sleep(200); }
    }
    assert.ok(c2, 'reconnected through the balancer');
    assert.equal(c2.welcome.resumed, true);
    const replayed = await c2.next((f) => f.type === 'reply');
    assert.equal(replayed.seq, r1.seq);
    assert.equal(replayed.text, r1.text);
    c2.send({ type: 'message', id: 'q2', text: 'what is your return policy' });
    const r2 = await c2.next((f) => f.type === 'reply' && f.reply_to === 'q2');
    assert.equal(r2.seq, r1.seq + 2); /* q2 took r1.seq + 1: nothing lost, nothing twice */
    c2.close();
  });
