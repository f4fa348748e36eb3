// HTTP side of `caredesk serve`: settings errors, /healthz, /metrics, static
// files (MIME types, security headers, no path traversal), SIGTERM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, runCaredesk, fixtures } from './lib/server.mjs';

let srv;
let web;

// Sends one raw HTTP/1.1 request (so the path is not normalised by a client
// library) and returns { status, headers, body }.
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.setEncoding('latin1');
    sock.on('connect', () => {
      sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (d) => { data += d; });
    sock.on('error', reject);
    sock.on('close', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const status = Number((head.match(/^HTTP\/1\.1 (\d+)/) || [])[1] || 0);
      resolve({ status, head, body: rest.join('\r\n\r\n') });
    });
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
  });
}

before(async () => {
  web = mkdtempSync(path.join(tmpdir(), 'caredesk-web-'));
  writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>home</title>');
  writeFileSync(path.join(web, 'agent.html'), '<!doctype html><title>agent</title>');
  writeFileSync(path.join(web, 'widget.js'), 'console.log(1)');
  writeFileSync(path.join(web, 'style.css'), 'body{}');
  writeFileSync(path.join(web, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  mkdirSync(path.join(web, 'dashboard'));
  writeFileSync(path.join(web, 'dashboard', 'index.html'), '<title>dash</title>');
  writeFileSync(path.join(path.dirname(web), path.basename(web) + '-secret.txt'), 'TOPSECRET');
  symlinkSync('/etc/passwd', path.join(web, 'passwd-link'));
  symlinkSync(path.join(path.dirname(web), path.basename(web) + '-secret.txt'),
    path.join(web, 'secret-link.txt'));
  srv = await startServer({ web, ...fixtures });
});

after(async () => {
  if (srv) await srv.stop();
  rmSync(web, { recursive: true, force: true });
  rmSync(path.join(path.dirname(web), path.basename(web) + '-secret.txt'), { force: true });
});

test('healthz answers ok as JSON', async () => {
  const res = await fetch(`${srv.url}/healthz`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.equal(typeof body.uptime_s, 'number');
});

test('metrics are Prometheus text with the documented families', async () => {
  const res = await fetch(`${srv.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const family of ['caredesk_connections', 'caredesk_messages_received_total',
    'caredesk_decisions_total', 'caredesk_deflection_ratio', 'caredesk_queue_length',
    'caredesk_wait_seconds', 'caredesk_pickup_seconds', 'caredesk_store_commit_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  }
  assert.match(text, /^caredesk_decisions_total\{action="answer"\} \d+$/m);
  assert.match(text, /^caredesk_wait_seconds_bucket\{le="\+Inf"\} \d+$/m);
});

test('GET / serves index.html with security headers', async () => {
  const res = await fetch(`${srv.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.equal(await res.text(), '<!doctype html><title>home</title>');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(res.headers.get('content-security-policy'));
  assert.ok(res.headers.get('referrer-policy'));
});

test('static files get the right MIME type; pages without .html resolve', async () => {
  const cases = [
    ['/widget.js', /^text\/javascript/],
    ['/style.css', /^text\/css/],
    ['/logo.svg', /^image\/svg\+xml/],
    ['/agent', /^text\/html/],
    ['/dashboard', /^text\/html/],
  ];
  for (const [p, type] of cases) {
    const res = await fetch(srv.url + p);
    await res.arrayBuffer();
    assert.equal(res.status, 200, p);
    assert.match(res.headers.get('content-type'), type, p);
  }
  const missing = await fetch(`${srv.url}/nope.html`);
  await missing.arrayBuffer();
  assert.equal(missing.status, 404);
});

test('path traversal is refused: .., encoded, double-encoded, symlink escape', async () => {
  const attempts = [
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
    '/..%2f..%2f..%2fetc%2fpasswd',
    '/%252e%252e/%252e%252e/etc/passwd',
    '/dashboard/../../' + path.basename(web) + '-secret.txt',
    '/..\\..\\etc\\passwd',
    '/passwd-link',
    '/secret-link.txt',
  ];
  for (const target of attempts) {
    const res = await rawGet(srv.port, target);
    assert.notEqual(res.status, 200, target);
    assert.ok(res.status >= 400 && res.status < 500, `${target}: ${res.status}`);
    assert.doesNotMatch(res.body, /root:|TOPSECRET/, target);
  }
  // The server is still fine.
  const ok = await fetch(`${srv.url}/healthz`);
  assert.equal(ok.status, 200);
});

test('non-GET on a static path is 405', async () => {
  const res = await fetch(`${srv.url}/index.html`, { method: 'DELETE' });
  await res.arrayBuffer();
  assert.equal(res.status, 405);
});

test('bad settings stop start-up with exit 2 and name the setting', async () => {
  const cases = [
    [['serve', '--port', 'eighty'], /port/],
    [['serve', '--max-message-bytes', '-5'], /max-message-bytes/],
    [['serve', '--durability', 'maybe'], /durability/],
    [['serve', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], /tls-cert/],
    [['serve', '--no-such-flag', '1'], /no-such-flag/],
  ];
  for (const [args, re] of cases) {
    const r = await runCaredesk(args, { env: { CAREDESK_DB: '/nonexistent/x.db' } });
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re);
  }
  const env = await runCaredesk(['serve'], { env: { CAREDESK_RATE_LIMIT: 'fast' } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /rate-limit.*CAREDESK_RATE_LIMIT/);
});

test('SIGTERM drains and exits 0', async () => {
  const s2 = await startServer({ web, ...fixtures });
  const res = await s2.stop();
  assert.equal(res.code, 0);
  assert.ok(s2.events('stopped').length === 1);
});
