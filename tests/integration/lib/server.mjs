// Starts the real caredesk binary for integration and browser tests.
//
//   import { startServer } from './lib/server.mjs';
//   const srv = await startServer({ args: ['--rate-limit', '0'] });
//   ... fetch(srv.url + '/healthz'), new WebSocket(srv.wsUrl + '/chat') ...
//   await srv.stop();            // SIGTERM, waits for exit, removes the temp dir
//
// The binary comes from CAREDESK_BIN (make test sets it), else build/caredesk.
// Each server gets its own temp directory and database, the shipped ./kb,
// ./intents and ./web of the repository, and an ephemeral loopback port
// (--port 0; the port is read from the "listening" log line), so several
// test runs on one machine never collide.
import { spawn } from 'node:child_process';
import https from 'node:https';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgDatabase } from './pg.mjs';
import { sleep } from './wait.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// A small, fixed KB and intent set for tests whose expectations must not move
// when the shipped content is edited: startServer({ ...fixtures }).
export const fixtures = {
  kb: path.join(repoRoot, 'tests/integration/fixtures/kb'),
  intents: path.join(repoRoot, 'tests/integration/fixtures/intents'),
};
export const caredeskBin = process.env.CAREDESK_BIN || path.join(repoRoot, 'build/caredesk');

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function hasFlag(args, name) {
  return args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
}

// Runs `caredesk ARGS` to completion (for `caredesk user add` and friends).
// Returns { code, stdout, stderr }; with timeoutMs, a command still running then is killed
// (SIGKILL: the result's signal says so).
export function runCaredesk(args, { cwd = repoRoot, env = {}, input, timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    // CAREDESK_TEST_BACKEND is the tests' own, not a setting the command would accept.
    const p = spawn(caredeskBin, args,
      { cwd, env: { ...process.env, CAREDESK_TEST_BACKEND: undefined, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = timeoutMs ? setTimeout(() => p.kill('SIGKILL'), timeoutMs) : null;
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

// Runs `caredesk user add NAME --role ROLE [--skills SKILLS] --db DB` and
// returns the access token it prints (its last line: 64 hex digits). Throws
// when it fails or prints no token.
export async function addUser(db, name, role, skills) {
  const args = ['user', 'add', name, '--role', role, '--db', db];
  if (skills) args.push('--skills', skills);
  const r = await runCaredesk(args);
  if (r.code !== 0) throw new Error(`caredesk user add ${name} exited ${r.code}: ${r.stderr}`);
  const token = r.stdout.trim().split('\n').pop().trim();
  if (!/^[0-9a-f]{64}$/.test(token)) throw new Error(`caredesk user add ${name} printed no token: ${r.stdout}`);
  return token;
}

// Options: args (extra flags), env (extra environment), dir (reuse a temp
// dir, e.g. to restart on the same database), db, kb, intents, web (paths;
// default: the repository's), timeoutMs (start-up wait, default 20 s),
// quiet (do not echo the server's log on failure).
// With CAREDESK_TEST_BACKEND=postgres a server without opts.db gets a new PostgreSQL database
// (lib/pg.mjs), kept across restart().
let nPgServers = 0;
export async function startServer(opts = {}) {
  if (!opts.db && process.env.CAREDESK_TEST_BACKEND === 'postgres') {
    opts = { ...opts, db: await pgDatabase(`srv${++nPgServers}`) };
  }
  const dir = opts.dir || mkdtempSync(path.join(tmpdir(), 'caredesk-test-'));
  const db = opts.db || path.join(dir, 'caredesk.db');
  const args = ['serve', '--bind', '127.0.0.1', '--db', db];
  const extra = opts.args || [];
  const def = (name, value) => { if (!hasFlag(extra, name)) args.push(`--${name}`, value); };
  def('port', '0');
  def('kb', opts.kb || path.join(repoRoot, 'kb'));
  def('intents', opts.intents || path.join(repoRoot, 'intents'));
  def('web', opts.web || path.join(repoRoot, 'web'));
  def('log-level', 'info');
  args.push(...extra);

  const env = { ...process.env, ...(opts.env || {}) };
  for (const k of Object.keys(env)) {
    // Settings from the caller's shell must not leak into the test server.
    if (k.startsWith('CAREDESK_') && k !== 'CAREDESK_BIN' && !(opts.env && k in opts.env)) {
      delete env[k];
    }
  }
  const proc = spawn(caredeskBin, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const logs = [];
  let stdout = '';
  let partial = '';
  let port = 0;
  let onPort;
  const gotPort = new Promise((resolve) => { onPort = resolve; });
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => {
    partial += d;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      let obj = null;
      try { obj = JSON.parse(line); } catch { obj = { raw: line }; }
      logs.push(obj);
      if (obj && obj.event === 'listening' && !port) {
        port = obj.port;
        onPort(port);
      }
    }
  });
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });

  // With --tls-cert the server speaks https and wss only.
  const tls = hasFlag(extra, 'tls-cert');
  const srv = {
    proc, dir, db, logs, args, tls,
    get port() { return port; },
    get url() { return `${tls ? 'https' : 'http'}://127.0.0.1:${port}`; },
    get wsUrl() { return `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}`; },
    exited,
    stdout: () => stdout,
    // Lines logged so far with this event name.
    events: (name) => logs.filter((l) => l.event === name),
    // SIGTERM (or another signal), wait for the exit; keeps the directory
    // when keepDir is set (to restart on the same database).
    async stop({ signal = 'SIGTERM', keepDir = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const res = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r(null), 10000).unref()),
      ]);
      if (!res) {
        proc.kill('SIGKILL');
        await exited;
      }
      if (!keepDir && !opts.dir) rmSync(dir, { recursive: true, force: true });
      return res || { code: null, signal: 'SIGKILL' };
    },
    // kill -9: nothing flushed, nothing closed; the directory is kept.
    async kill() {
      return srv.stop({ signal: 'SIGKILL', keepDir: true });
    },
    // Starts a new server on the same directory and database.
    async restart(more = {}) {
      return startServer({ ...opts, ...more, dir });
    },
  };

  const timeoutMs = opts.timeoutMs || 20000;
  const deadline = Date.now() + timeoutMs;
  const failed = (why) => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    const tail = logs.slice(-20).map((l) => JSON.stringify(l)).join('\n');
    return new Error(`caredesk serve ${why}\nargs: ${args.join(' ')}\n${tail}${partial}`);
  };
  const first = await Promise.race([
    gotPort.then(() => 'port'),
    exited.then(() => 'exit'),
    new Promise((r) => setTimeout(() => r('timeout'), timeoutMs).unref()),
  ]);
  if (first !== 'port') throw failed(first === 'exit' ? `exited (${proc.exitCode})` : 'timed out');
  for (;;) {
    try {
      const status = tls ? await httpsStatus(`${srv.url}/healthz`)
        : await fetch(`${srv.url}/healthz`).then(async (res) => { await res.text(); return res.status; });
      if (status === 200) break;
    } catch { /* not ready yet */ }
    if (proc.exitCode !== null) throw failed(`exited (${proc.exitCode})`);
    if (Date.now() > deadline) throw failed('never became healthy');
    await sleep(50);
  }
  return srv;
}

// GET over https accepting a self-signed certificate (tests only): resolves
// with the status code, or { status, body } when wantBody is set.
export function httpsStatus(url, { wantBody = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(wantBody ? { status: res.statusCode, body, headers: res.headers }
        : res.statusCode));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

// True when the repository ships a directory (kb, intents, web).
export function shipped(name) {
  return existsSync(path.join(repoRoot, name));
}
