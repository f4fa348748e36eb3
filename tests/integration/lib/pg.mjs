// A fresh database on the test PostgreSQL for integration tests.
//
//   import { pgDatabase } from './lib/pg.mjs';
//   const url = await pgDatabase('cluster');   // postgresql://caredesk@127.0.0.1:PORT/t_cluster_PID
//   startServer({ db: url }) ...
//
// The cluster is CAREDESK_TEST_PG's (tests/run.sh starts one for the whole run); a test file
// run on its own starts one with scripts/pg-cluster.sh and stops it when the process exits.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

let base = null;

function cluster() {
  if (base) return base;
  let url = process.env.CAREDESK_TEST_PG;
  if (!url) {
    const dir = mkdtempSync(path.join(tmpdir(), 'cd-test-pg-'));
    url = execFileSync(path.join(repoRoot, 'scripts/pg-cluster.sh'), ['start', dir],
      { env: { ...process.env, PG_FSYNC: 'off' }, encoding: 'utf8' }).trim();
    process.on('exit', () => {
      try { execFileSync(path.join(repoRoot, 'scripts/pg-cluster.sh'), ['stop', dir]); } catch { /* gone */ }
    });
  }
  base = url.slice(0, url.lastIndexOf('/') + 1);
  return base;
}

// psql is PostgreSQL's own client (postgresql-client, which the server package brings).
export function psql(url, sql) {
  return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', url, '-c', sql],
    { encoding: 'utf8', env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' } }).trim();
}

export async function pgDatabase(name) {
  const b = cluster();
  const db = `t_${name.replace(/[^a-z0-9_]/g, '_')}_${process.pid}`;
  psql(`${b}caredesk`, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  psql(`${b}caredesk`, `CREATE DATABASE ${db}`);
  return `${b}${db}`;
}
