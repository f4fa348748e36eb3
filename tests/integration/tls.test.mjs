// TLS: with --tls-cert/--tls-key (a self-signed certificate made here with
// openssl), pages come over https and the chat over wss.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, fixtures, httpsStatus } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { sleep } from './lib/wait.mjs';

let srv;
let dir;
let haveOpenssl = true;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'caredesk-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'key.pem'),
      '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  } catch {
    haveOpenssl = false;
    return;
  }
  srv = await startServer({
    ...fixtures,
    args: ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')],
  });
});

after(async () => {
  if (srv) await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('https serves healthz; wss carries a conversation', async (t) => {
  if (!haveOpenssl) return t.skip('openssl is not installed');
  const h = await httpsStatus(`${srv.url}/healthz`, { wantBody: true });
  assert.equal(h.status, 200);
  assert.equal(JSON.parse(h.body).status, 'ok');
  assert.equal(h.headers['x-content-type-options'], 'nosniff');
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'message', id: 'm1', text: 'how do I reset my password' });
  const r = await c.next((f) => f.type === 'reply');
  assert.equal(r.action, 'answer');
  c.close();
});

test('plain http on the TLS port gets no page', async (t) => {
  if (!haveOpenssl) return t.skip('openssl is not installed');
  const ok = await fetch(`http://127.0.0.1:${srv.port}/healthz`).then((r) => r.status).catch(() => 0);
  assert.notEqual(ok, 200);
});

test('wss: an unmasked client frame closes the connection, and is never taken', async (t) => {
  if (!haveOpenssl) return t.skip('openssl is not installed');
  const tls = await import('node:tls');
  const { wsFrame, handshake } = await import('./lib/rawws.mjs');
  const sock = tls.connect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false });
  await new Promise((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); });
  let got = Buffer.alloc(0);
  sock.on('data', (d) => { got = Buffer.concat([got, d]); });
  sock.on('error', () => {});
  sock.write(handshake('/chat', srv.port));
  for (let i = 0; i < 50 && !got.includes('\r\n\r\n'); i++) await sleep(20);
  assert.match(got.toString('latin1'), /^HTTP\/1\.1 101/);
  got = Buffer.alloc(0);
  sock.write(wsFrame('{"type":"hello"}', { mask: false }));
  const closed = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 3000);
    sock.once('close', () => { clearTimeout(timer); resolve(true); });
  });
  assert.ok(closed, 'the connection is still open');
  assert.ok(!got.includes('welcome'), got.toString('latin1'));
  // The server goes on.
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello' });
  await c.next((f) => f.type === 'welcome');
  c.close();
});
