// Websocket transport limits, whatever the conversation engine says:
// binary frames (error, then close 1003), invalid UTF-8 (error), frames over
// the hard limit (close 1009), per-connection rate limit, origin allow-list,
// maximum connections, unknown paths, and SIGTERM closing with 1001.
import { test, before, after } from 'node:test';
import net from 'node:net';
import assert from 'node:assert/strict';
import { startServer, fixtures } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { sleep } from './lib/wait.mjs';

let srv;

before(async () => {
  srv = await startServer({
    ...fixtures,
    args: ['--rate-limit', '5', '--max-connections', '6', '--max-frame-bytes', '16384',
      '--allowed-origins', 'https://shop.example, https://www.shop.example/'],
  });
});

after(async () => { if (srv) await srv.stop(); });

async function healthy() {
  const res = await fetch(`${srv.url}/healthz`);
  const body = await res.json();
  assert.equal(res.status, 200);
  return body;
}

test('binary frame: error "binary", then close 1003; others unaffected', async () => {
  const other = await connect(`${srv.wsUrl}/chat`);
  const c = await connect(`${srv.wsUrl}/chat`);
  c.sendRaw(Buffer.from([1, 2, 3, 4]), { binary: true });
  const err = await c.next((f) => f.type === 'error' && f.code === 'binary');
  assert.ok(err.message);
  const closed = await c.whenClosed();
  assert.equal(closed.code, 1003);
  assert.equal(other.closed, null);
  other.close();
  await healthy();
});

test('invalid UTF-8: error "bad_utf8", connection stays open', async () => {
  const c = await connect(`${srv.wsUrl}/chat`);
  // ws refuses to send invalid UTF-8 as text; build the frame by hand.
  const payload = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  c.ws._socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  const err = await c.next((f) => f.type === 'error' && f.code === 'bad_utf8');
  assert.ok(err);
  assert.equal(c.closed, null);
  c.close();
});

test('frame over the hard limit: close 1009', async () => {
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send(JSON.stringify({ type: 'message', id: 'big', text: 'x'.repeat(20000) }));
  const closed = await c.whenClosed();
  assert.equal(closed.code, 1009);
  await healthy();
});

test('rate limit: messages beyond N per second get "rate_limited"', async () => {
  const c = await connect(`${srv.wsUrl}/chat`);
  for (let i = 0; i < 12; i++) c.send({ type: 'typing' });
  const err = await c.next((f) => f.type === 'error' && f.code === 'rate_limited');
  assert.ok(err);
  assert.equal(c.closed, null);
  c.close();
});

test('origin allow-list: listed and same origin pass, others are refused', async () => {
  const ok1 = await connect(`${srv.wsUrl}/chat`, { origin: 'https://shop.example' });
  const ok2 = await connect(`${srv.wsUrl}/chat`, { origin: 'https://www.shop.example' });
  const same = await connect(`${srv.wsUrl}/chat`, { origin: `http://127.0.0.1:${srv.port}` });
  const none = await connect(`${srv.wsUrl}/chat`);
  await assert.rejects(connect(`${srv.wsUrl}/chat`, { origin: 'https://evil.example' }));
  await assert.rejects(connect(`${srv.wsUrl}/agent`, { origin: 'https://shop.example.evil' }));
  for (const c of [ok1, ok2, same, none]) c.close();
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /caredesk_connections_rejected_total\{reason="origin"\} [1-9]/);
});

test('unknown websocket path is refused', async () => {
  await assert.rejects(connect(`${srv.wsUrl}/nope`));
});

test('max connections: the one over the limit is refused, then room again', async () => {
  // Wait for earlier tests' sockets to be gone.
  for (let i = 0; i < 50 && (await healthy()).connections > 0; i++) {
    await sleep(20);
  }
  const open = [];
  for (let i = 0; i < 6; i++) open.push(await connect(`${srv.wsUrl}/chat`));
  await assert.rejects(connect(`${srv.wsUrl}/chat`));
  open.pop().close();
  await open.length; // let the close reach the server
  let extra = null;
  for (let i = 0; i < 50 && !extra; i++) {
    extra = await connect(`${srv.wsUrl}/chat`).catch(() => null);
    if (!extra) await sleep(20);
  }
  assert.ok(extra, 'a connection is accepted again after one closed');
  extra.close();
  for (const c of open) c.close();
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /caredesk_connections_rejected_total\{reason="max_connections"\} [1-9]/);
});

test('SIGTERM: websockets close with 1001, exit 0', async () => {
  const s2 = await startServer({ ...fixtures });
  const a = await connect(`${s2.wsUrl}/chat`);
  const b = await connect(`${s2.wsUrl}/agent`);
  const res = await s2.stop();
  assert.equal(res.code, 0);
  assert.equal((await a.whenClosed()).code, 1001);
  assert.equal((await b.whenClosed()).code, 1001);
});

test('idle timeout: a client that never answers pings is dropped; one that does stays', async () => {
  const s = await startServer({ ...fixtures, args: ['--idle-timeout', '1'] });
  try {
    const alive = await connect(`${s.wsUrl}/chat`); // ws answers pings by itself
    const sock = net.connect(s.port, '127.0.0.1');
    let got = '';
    const closed = new Promise((resolve) => sock.on('close', resolve));
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.write(`GET /chat HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nUpgrade: websocket\r\n`
      + 'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
      + 'Sec-WebSocket-Version: 13\r\n\r\n');
    const t0 = Date.now();
    const outcome = await Promise.race([closed.then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('open'), 8000))]);
    assert.match(got, /^HTTP\/1\.1 101/);
    assert.equal(outcome, 'closed', 'the silent client is dropped');
    assert.ok(Date.now() - t0 >= 900, 'not before the idle timeout');
    assert.equal(alive.closed, null, 'a client that answers pings stays');
    alive.close();
    sock.destroy();
  } finally {
    await s.stop();
  }
});
