// A node whose PostgreSQL goes away and comes back, on a cluster of this test's own (so the
// other tests' database stays up): /healthz says 503 database_unreachable, a customer's message
// gets store_failed and nothing of it is stored, the websocket stays open, and when the
// database returns the node recovers by itself: healthy again, and the same message (same id)
// is answered and stored once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, fixtures, repoRoot } from './lib/server.mjs';
import { openCustomer, ask } from './lib/client.mjs';
import { psql } from './lib/pg.mjs';
import { sleep, waitFor } from './lib/wait.mjs';

const script = path.join(repoRoot, 'scripts/pg-cluster.sh');
let dir;
let url;
let node;

function cluster(cmd) {
  return execFileSync(script, [cmd, dir], { env: { ...process.env, PG_FSYNC: 'off' }, encoding: 'utf8' }).trim();
}

async function health() {
  const res = await fetch(`${node.url}/healthz`);
  return { status: res.status, body: await res.json() };
}

// The /healthz answer once its status is status, or null when timeoutMs pass first.
function healthBecomes(status, timeoutMs) {
  return waitFor(async () => {
    const h = await health();
    return h.status === status ? h : null;
  }, { timeoutMs });
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cd-test-pg-outage-'));
  url = cluster('start');
  node = await startServer({ ...fixtures, db: url });
});

after(async () => {
  if (node) await node.stop();
  if (dir) cluster('stop');
});

test('the database goes away and comes back: 503, store_failed, then recovery without a restart',
  async () => {
    const c = await openCustomer(node);
    const r1 = await ask(c, 'm1', 'how do I reset my password');
    assert.equal(r1.type, 'reply');
    assert.equal((await health()).status, 200);

    cluster('halt');
    const down = await healthBecomes(503, 10000);
    assert.ok(down, '/healthz fails while the database is away');
    assert.equal(down.body.status, 'database_unreachable');
    assert.equal(down.body.database, false);

    const failed = await ask(c, 'm2', 'what is your return policy');
    assert.equal(failed.type, 'error');
    assert.equal(failed.code, 'store_failed');
    assert.equal(c.closed, null, 'the customer stays connected');

    cluster('resume');
    const up = await healthBecomes(200, 15000);
    assert.ok(up, 'the node is healthy again by itself');
    assert.equal(up.body.database, true);

    // The customer sends the message again (same id): answered now, stored once.
    let r2;
    for (let i = 0; i < 20 && !(r2 && r2.type === 'reply'); i++) {
      r2 = await ask(c, 'm2', 'what is your return policy');
      if (r2.type !== 'reply') await sleep(200);
    }
    assert.equal(r2.type, 'reply');
    assert.ok(r2.seq > r1.seq);
    const conv = c.welcome.conversation;
    assert.equal(psql(url, `SELECT count(*) FROM messages WHERE conversation = ${conv} AND client_id = 'm2'`), '1');
    const seqs = psql(url, `SELECT string_agg(seq::text, ',' ORDER BY seq) FROM messages WHERE conversation = ${conv}`)
      .split(',').map(Number);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'seqs 1..n, nothing half-stored');
    c.close();
  });
