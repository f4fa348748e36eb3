// `caredesk backup` against the real server while customers keep writing: each copy is a
// consistent snapshot (integrity check ok, every conversation's seqs 1..n without gaps,
// everything acknowledged before the backup started is in it), and a server started on a
// copy (the restore in docs/operations.md) resumes a customer's conversation from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, runCaredesk, fixtures } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { sleep } from './lib/wait.mjs';

const sql = (db, q) => execFileSync('sqlite3', [db, q], { encoding: 'utf8' }).trim();

test('backups taken while customers write are consistent, and a server restored from one resumes', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-backup-'));
  const srv = await startServer({ ...fixtures, args: ['--rate-limit', '0'] });
  let restored;
  const customers = [];
  try {
    for (let i = 0; i < 6; i++) {
      const c = await connect(`${srv.wsUrl}/chat`);
      c.send({ type: 'hello', lang: 'en', name: `C${i}` });
      c.welcome = await c.next((f) => f.type === 'welcome');
      c.acked = 0;
      customers.push(c);
    }
    // Customers write without pause until told to stop.
    let writing = true;
    const loops = customers.map(async (c, i) => {
      for (let n = 1; writing && n <= 200; n++) {
        const id = `m${n}`;
        c.send({ type: 'message', id, text: n % 2 ? 'where is my order' : 'thanks' });
        await c.next((f) => (f.type === 'reply' || f.type === 'ack') && f.reply_to === id, { timeoutMs: 10000 });
        c.acked = n;
      }
    });
    await sleep(300);

    const copies = [];
    for (let k = 0; k < 3; k++) {
      const before = customers.map((c) => c.acked);
      const out = path.join(dir, `backup-${k}.db`);
      const r = await runCaredesk(['backup', '--db', srv.db, out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^backed up .* to .*backup-\d\.db: \d+ pages of \d+ bytes/);
      copies.push({ out, before });
      await sleep(150);
    }
    writing = false;
    await Promise.all(loops);
    assert.ok(customers.every((c) => c.acked > 0), 'the customers wrote during the backups');

    for (const { out, before } of copies) {
      assert.equal(sql(out, 'PRAGMA integrity_check'), 'ok');
      assert.equal(sql(out, 'PRAGMA journal_mode'), 'delete', 'the copy is one file');
      const gaps = sql(out, 'SELECT count(*) FROM (SELECT conversation, count(*) AS n, max(seq) AS m '
        + 'FROM messages GROUP BY conversation) WHERE n != m');
      assert.equal(gaps, '0', 'every conversation has seqs 1..n in the copy');
      customers.forEach((c, i) => {
        if (!before[i]) return;
        const stored = Number(sql(out, `SELECT count(*) FROM messages WHERE conversation = ${c.welcome.conversation} `
          + `AND sender = 'customer' AND client_id = 'm${before[i]}'`));
        assert.equal(stored, 1, `message m${before[i]} of C${i}, acknowledged before the backup, is in ${out}`);
      });
    }
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');

    // An existing output is refused and left as it was; a missing database is an error.
    writeFileSync(path.join(dir, 'taken.db'), 'keep me');
    let r = await runCaredesk(['backup', '--db', srv.db, path.join(dir, 'taken.db')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /taken\.db exists/);
    assert.equal(readFileSync(path.join(dir, 'taken.db'), 'utf8'), 'keep me');
    r = await runCaredesk(['backup', '--db', path.join(dir, 'nope.db'), path.join(dir, 'x.db')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such database file/);
    assert.ok(!existsSync(path.join(dir, 'x.db')));
    r = await runCaredesk(['backup']);
    assert.equal(r.code, 2);
    // PostgreSQL is backed up with pg_dump: refused, nothing written, the URL's password unsaid.
    r = await runCaredesk(['backup', '--db', 'postgresql://u:s3cret@127.0.0.1:1/x', path.join(dir, 'pg.db')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /PostgreSQL.*pg_dump/);
    assert.doesNotMatch(r.stderr, /s3cret/);
    assert.ok(!existsSync(path.join(dir, 'pg.db')));

    // Restore: a server on the last copy knows the customer and replays the conversation.
    for (const c of customers) c.close();
    await srv.stop();
    const last = copies[copies.length - 1];
    restored = await startServer({ ...fixtures, db: last.out });
    const c0 = customers[0];
    const again = await connect(`${restored.wsUrl}/chat`);
    again.send({ type: 'hello', token: c0.welcome.token, last_seq: 0 });
    const w = await again.next((f) => f.type === 'welcome');
    assert.equal(w.resumed, true);
    assert.equal(w.conversation, c0.welcome.conversation);
    assert.ok(w.seq >= 2 * last.before[0], `the copy holds the transcript (seq ${w.seq})`);
    again.close();
  } finally {
    for (const c of customers) c.close();
    await srv.stop();
    if (restored) await restored.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
