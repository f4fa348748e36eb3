// Hostile clients against the real server: malformed and truncated frames,
// frames split at every byte (raw TCP), a handshake written a byte at a time,
// invalid UTF-8 and control characters, 1 MB frames, thousands of tiny
// frames, a reader that never reads, slowloris handshakes, a connection
// flood beyond --max-connections, rate-limit excess, HTTP request smuggling
// on the REST routes and path traversal on static files. After each: the
// server is up, a new customer gets a full answer, and its memory (RSS) is
// back within 24 MB of the baseline measured after warm-up (256 MB under
// AddressSanitizer, whose quarantine holds freed memory).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startServer, fixtures } from './lib/server.mjs';
import { connect } from './lib/client.mjs';
import { rawConnect, wsFrame, handshake } from './lib/rawws.mjs';
import { sleep } from './lib/wait.mjs';

// The answer to message id: a bot reply, or an ack once the chat is queued
// (repeating a question hands off).
const answerTo = (id) => (f) => (f.type === 'reply' || f.type === 'ack') && f.reply_to === id;
let srv;     // rate limit off: for floods of frames and split frames
let limited; // rate limit 20/s, 40 connections: for floods of connections
let baselineKb = 0;
let noChat = false;

// AddressSanitizer keeps freed memory in quarantine (256 MB by default) instead of
// reusing it, so under `make SANITIZE=...` RSS only shows a runaway, not slack.
function isSanitized(server) {
  return /libasan/.test(readFileSync(`/proc/${server.proc.pid}/maps`, 'utf8'));
}

function rssKb(server) {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

// A new customer asks a question and gets an answer.
async function served(server = srv) {
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  await res.text();
  if (noChat) return;
  const c = await connect(`${server.wsUrl}/chat`);
  c.send({ type: 'hello', lang: 'en' });
  await c.next((f) => f.type === 'welcome');
  c.send({ type: 'message', id: 'probe', text: 'how do I return an item?' });
  const reply = await c.next((f) => f.type === 'reply' && f.reply_to === 'probe');
  assert.ok(reply.text.length > 0);
  c.close();
}

// Up, serving, and memory back near its baseline (allocator slack allowed).
async function stillServing(server = srv) {
  await served(server);
  if (server !== srv) return;
  const slackKb = (isSanitized(srv) ? 256 : 24) * 1024;
  let kb = rssKb(srv);
  for (let i = 0; i < 20 && kb > baselineKb + slackKb; i++) {
    await sleep(100);
    kb = rssKb(srv);
  }
  assert.ok(kb <= baselineKb + slackKb,
    `RSS ${Math.round(kb / 1024)} MB, baseline ${Math.round(baselineKb / 1024)} MB`);
}

async function metric(server, name) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

before(async () => {
  srv = await startServer({
    ...fixtures, quiet: true,
    args: ['--rate-limit', '0', '--max-queued-frames', '64', '--max-frame-bytes', '65536'],
  });
  noChat = srv.events('chat_unavailable').length > 0;
  limited = await startServer({
    ...fixtures, quiet: true,
    args: ['--rate-limit', '20', '--max-connections', '40'],
  });
  for (let i = 0; i < 5; i++) await served();
  baselineKb = rssKb(srv);
});

after(async () => {
  if (srv) await srv.stop();
  if (limited) await limited.stop();
});

test('malformed and truncated frames: an error each, nothing stored, connection open',
  async (t) => {
    if (noChat) return t.skip('no chat module');
    const c = await connect(`${srv.wsUrl}/chat`);
    c.send({ type: 'hello' });
    const welcome = await c.next((f) => f.type === 'welcome');
    const good = JSON.stringify({ type: 'message', id: 'm1', text: 'where is my order?' });
    const bad = [];
    for (let i = 1; i < good.length; i++) bad.push(good.slice(0, i)); // every truncation
    bad.push('', ' ', 'null', '[]', '"message"', '42', '{"type":5}', '{"type":"message"}',
      '{"type":"message","id":"x"}', '{"type":"message","id":"","text":"x"}',
      '{"type":"message","id":"x","text":7}', '{"type":"message","id":{},"text":"x"}',
      `{"type":"message","id":"${'i'.repeat(200)}","text":"x"}`,
      '{"type":"message","id":"d","text":"a","text":"b","type":"hello"}',
      '['.repeat(20000), '{"a":'.repeat(5000), '{"type":"feedback","seq":1e999,"helpful":true}',
      '{"type":"rating","score":-1}', '{"type":"hello"}', '{"type":"nosuchtype"}',
      '{"type":"message","id":"x","text":"\\ud800"}');
    // One at a time (a burst of errors beyond --max-queued-frames would, rightly, drop us).
    for (const b of bad.slice(0, -1)) {
      c.send(b);
      const err = await c.next((f) => f.type === 'error');
      assert.ok(err.code && err.message, JSON.stringify(err));
    }
    c.send(bad[bad.length - 1]); // a lone surrogate escape: refused or taken as text
    await c.next((f) => f.type === 'error' || f.reply_to === 'x');
    assert.equal(c.closed, null);
    c.send(good);
    const reply = await c.next((f) => f.type === 'reply' && f.reply_to === 'm1');
    // Nothing of the bad frames was stored: the question is seq 1 or 2 (after 'x').
    assert.ok(reply.seq === welcome.seq + 2 || reply.seq === welcome.seq + 4, `seq ${reply.seq}`);
    c.close();
    await stillServing();
  });

test('a frame split at every byte (raw TCP) is read whole; a handshake byte by byte works',
  async (t) => {
    if (noChat) return t.skip('no chat module');
    const c = await rawConnect(srv.port, '/chat', { chunk: 1 });
    c.write(wsFrame('{"type":"hello"}'));
    await c.next((f) => f.type === 'welcome');
    const frame0 = wsFrame(JSON.stringify({ type: 'message', id: 'sXXX', text: 'where is my order?' }));
    for (let at = 1; at < frame0.length; at++) {
      const id = `s${String(at).padStart(3, '0')}`;
      const frame = wsFrame(JSON.stringify({ type: 'message', id, text: 'where is my order?' }));
      await c.writeSplit(frame, at, 3);
      await c.next(answerTo(id));
    }
    // And one frame written a byte per TCP segment.
    const frame = wsFrame(JSON.stringify({ type: 'message', id: 'bytewise', text: 'refund?' }));
    await c.writeSplit(frame, Array.from({ length: frame.length - 1 }, (_, i) => i + 1), 1);
    await c.next(answerTo('bytewise'));
    c.destroy();
    await stillServing();
  });

test('invalid UTF-8, control characters and bad opcodes', async (t) => {
  if (noChat) return t.skip('no chat module');
  const c = await rawConnect(srv.port, '/chat');
  c.write(wsFrame('{"type":"hello"}'));
  await c.next((f) => f.type === 'welcome');
  const invalid = [
    [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
    [0xff], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
  ];
  for (const bytes of invalid) {
    const payload = Buffer.concat([Buffer.from('{"type":"message","id":"u","text":"'),
      Buffer.from(bytes), Buffer.from('"}')]);
    c.write(wsFrame(payload));
    const err = await c.next((f) => f.type === 'error');
    assert.equal(err.code, 'bad_utf8');
  }
  // Raw control characters inside a JSON string are not JSON.
  c.write(wsFrame('{"type":"message","id":"c1","text":"a\u0001\u0007\u001fb"}'));
  assert.equal((await c.next((f) => f.type === 'error')).code, 'bad_json');
  // Escaped control characters and NUL are text; stored and answered once.
  c.write(wsFrame(JSON.stringify({ type: 'message', id: 'c2', text: 'a\u0000b\u0007\u001b[2J\r\n' })));
  const r = await c.next((f) => f.type === 'reply' || f.type === 'error');
  assert.ok(r.type === 'reply' ? r.reply_to === 'c2' : ['bad_frame', 'bad_json'].includes(r.code),
    JSON.stringify(r));
  c.destroy();
  // Reserved opcodes and a continuation without a start are never taken as a message
  // (libwebsockets 4.1 ignores them), and an oversized ping closes the connection.
  for (const opcode of [0, 3, 7, 0xb, 0xf]) {
    const d = await rawConnect(srv.port, '/chat');
    d.write(wsFrame('{"type":"hello"}', { opcode }));
    await sleep(100);
    assert.deepEqual(d.frames, [], `opcode ${opcode} was taken as a frame`);
    d.destroy();
  }
  const e = await rawConnect(srv.port, '/chat');
  e.write(wsFrame('p'.repeat(200), { opcode: 9 }));
  await e.whenClosed();
  await stillServing();
});

test('an unmasked client frame closes the connection with 1002 (RFC 6455 section 5.1)', async () => {
  // Alone, after a good frame, split inside its header, in the handshake's own packet, as a
  // control frame, and on /agent: closed with 1002, and the frame is never taken.
  const hello = '{"type":"hello"}';
  const e = await rawConnect(srv.port, '/chat');
  e.write(wsFrame(hello, { mask: false }));
  assert.equal(await e.whenClosed(2000), 1002);
  assert.deepEqual(e.frames, []);
  const f = await rawConnect(srv.port, '/chat');
  f.write(wsFrame(hello));
  await f.next((x) => x.type === 'welcome');
  const bad = wsFrame(JSON.stringify({ type: 'message', id: 'u1', text: 'unmasked' }), { mask: false });
  await f.writeSplit(bad, [1]);
  assert.equal(await f.whenClosed(2000), 1002);
  assert.ok(!f.frames.some((x) => x.type === 'reply' || x.type === 'ack'), JSON.stringify(f.frames));
  for (const frame of [wsFrame('', { opcode: 9, mask: false }), wsFrame('', { opcode: 8, mask: false })]) {
    const g = await rawConnect(srv.port, '/agent');
    g.write(frame);
    assert.equal(await g.whenClosed(2000), 1002);
  }
  const h = await rawConnect(srv.port, '/chat', { noHandshake: true });
  h.write(Buffer.concat([Buffer.from(handshake('/chat', srv.port)), wsFrame(hello, { mask: false })]));
  assert.equal(await h.whenClosed(2000), 1002);
  assert.deepEqual(h.frames, []);
  // A handshake after a plain HTTP request on the same connection is followed too.
  const k = await rawConnect(srv.port, '/chat', { noHandshake: true });
  k.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n\r\n`);
  await sleep(200);
  k.write(handshake('/chat', srv.port));
  await sleep(200);
  k.write(wsFrame(hello, { mask: false }));
  assert.equal(await k.whenClosed(2000), 1002);
  assert.deepEqual(k.frames.filter((x) => x.type === 'welcome'), []);
  // Masked frames (7- and 16-bit lengths, a ping) still pass; 64-bit lengths: the 1 MB test.
  const m = await rawConnect(srv.port, '/chat');
  m.write(wsFrame(hello));
  await m.next((x) => x.type === 'welcome');
  m.write(wsFrame(JSON.stringify({ type: 'message', id: 'small', text: 'hi' })));
  m.write(wsFrame(JSON.stringify({ type: 'message', id: 'mid', text: 'how do I return ' + 'y'.repeat(3000) })));
  m.write(wsFrame('', { opcode: 9 }));
  await m.next((x) => x.reply_to === 'small');
  await m.next((x) => x.reply_to === 'mid');
  assert.equal(m.closed, false);
  m.destroy();
  await stillServing();
});

test('1 MB frames close with 1009; the server stays up', async () => {
  for (let i = 0; i < 3; i++) {
    const c = await connect(`${srv.wsUrl}/chat`);
    c.send(JSON.stringify({ type: 'message', id: 'big', text: 'x'.repeat(1 << 20) }));
    const closed = await c.whenClosed({ timeoutMs: 10000 });
    assert.equal(closed.code, 1009);
  }
  // A frame announced as 1 MB and sent slowly: closed once past --max-frame-bytes, not
  // buffered whole first.
  const raw = await rawConnect(srv.port, '/chat');
  const whole = wsFrame(Buffer.alloc(1 << 20, 0x41));
  raw.write(whole.subarray(0, 1000));
  await sleep(200);
  await served(); // a stalled frame holds nobody up
  for (let off = 1000; off < 200000 && !raw.closed; off += 10000) {
    raw.write(whole.subarray(off, off + 10000));
    await sleep(20);
  }
  assert.equal(await raw.whenClosed(10000), 1009);
  await stillServing();
});

test('thousands of tiny frames on one connection, then on twenty', async (t) => {
  if (noChat) return t.skip('no chat module');
  const c = await connect(`${srv.wsUrl}/chat`);
  c.send({ type: 'hello' });
  await c.next((f) => f.type === 'welcome');
  // 5000 frames in one burst, half of them bad: the server answers them or, once more than
  // --max-queued-frames errors wait for this client, drops it; either way it stays up.
  for (let i = 0; i < 5000; i++) c.send(i % 2 ? '{"type":"typing"}' : 'x');
  c.send({ type: 'message', id: 'after', text: 'where is my order?' });
  await Promise.race([c.next(answerTo('after'), { timeoutMs: 20000 }), c.whenClosed({ timeoutMs: 20000 })]);
  c.close();
  // The same 5000, paced in batches the client reads: all answered, never dropped.
  const p = await connect(`${srv.wsUrl}/chat`);
  p.send({ type: 'hello' });
  await p.next((f) => f.type === 'welcome');
  for (let b = 0; b < 100; b++) {
    for (let i = 0; i < 50; i++) p.send('{"type":"typing"}');
    p.send('x');
    await p.next((f) => f.type === 'error' && f.code === 'bad_json');
  }
  assert.equal(p.closed, null);
  p.close();
  // Twenty connections at once, 500 bad frames each: errors, or dropped for not keeping up.
  const many = await Promise.all(Array.from({ length: 20 }, () => connect(`${srv.wsUrl}/chat`)));
  for (const m of many) for (let i = 0; i < 500; i++) m.send('{}');
  await Promise.all(many.map((m) => Promise.race([
    m.next((f) => f.type === 'error', { timeoutMs: 10000 }), m.whenClosed({ timeoutMs: 10000 })])));
  await served();
  for (const m of many) m.close();
  await sleep(300);
  await stillServing();
});

test('a reader that never reads is disconnected once its queue is full', async (t) => {
  if (noChat) return t.skip('no chat module');
  const before = await metric(srv, 'caredesk_connections_dropped_total{reason="slow_reader"}');
  const c = await rawConnect(srv.port, '/chat');
  c.write(wsFrame('{"type":"hello"}'));
  await c.next((f) => f.type === 'welcome');
  c.sock.pause(); // never read again: the kernel buffers fill, then the server's queue
  const frame = (i) => wsFrame(JSON.stringify({ type: 'message', id: `q${i}`,
    text: 'how do I return an item and get a refund for it?' }));
  let closed = false;
  c.sock.once('close', () => { closed = true; });
  for (let i = 0; i < 30000 && !closed; i++) {
    if (!c.sock.write(frame(i))) await new Promise((r) => { c.sock.once('drain', r); setTimeout(r, 200); });
    if (i % 500 === 0) {
      await sleep(10);
      if (await metric(srv, 'caredesk_connections_dropped_total{reason="slow_reader"}') > before) break;
    }
  }
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline
    && await metric(srv, 'caredesk_connections_dropped_total{reason="slow_reader"}') <= before) {
    await sleep(100);
  }
  assert.ok(await metric(srv, 'caredesk_connections_dropped_total{reason="slow_reader"}') > before,
    'the slow reader was never dropped');
  c.destroy();
  await stillServing();
});

test('slowloris: handshakes sent a byte a second are dropped; others are served meanwhile',
  { timeout: 40000 }, async () => {
    const socks = [];
    for (let i = 0; i < 30; i++) {
      const s = net.connect(srv.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    const text = 'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
    let pos = 0;
    const drip = setInterval(() => {
      for (const s of socks) if (!s.destroyed) s.write(text[pos % text.length]);
      pos++;
    }, 1000);
    try {
      await sleep(1500);
      await served(); // served while 30 handshakes hang
      const t0 = Date.now();
      while (socks.some((s) => !s.destroyed && s.readyState !== 'closed') && Date.now() - t0 < 30000) {
        await sleep(250);
      }
      const open = socks.filter((s) => !s.destroyed && s.readyState !== 'closed').length;
      assert.equal(open, 0, `${open} slow handshakes still open after 30 s`);
    } finally {
      clearInterval(drip);
      for (const s of socks) s.destroy();
    }
    await stillServing();
  });

test('connection flood beyond --max-connections: the rest refused, then room again',
  async () => {
    const opened = [];
    let refused = 0;
    await Promise.all(Array.from({ length: 70 }, async () => {
      try { opened.push(await connect(`${limited.wsUrl}/chat`)); } catch { refused++; }
    }));
    assert.ok(opened.length <= 40, `${opened.length} connections accepted`);
    assert.ok(refused >= 30);
    for (const c of opened) c.close();
    await sleep(500);
    await stillServing(limited);
  });

test('rate-limit excess: flooding connections get rate_limited; a new customer is served',
  async (t) => {
    if (noChat) return t.skip('no chat module');
    const before = await metric(limited, 'caredesk_bad_input_total{reason="rate_limited"}');
    const floods = await Promise.all(Array.from({ length: 10 }, () => connect(`${limited.wsUrl}/chat`)));
    for (const f of floods) {
      f.send({ type: 'hello' });
      for (let i = 0; i < 300; i++) f.send({ type: 'message', id: `f${i}`, text: 'where is my order?' });
    }
    // Each flood gets rate_limited errors or, when those pile up past the queue, is dropped.
    await Promise.all(floods.map((f) => Promise.race([
      f.next((x) => x.type === 'error' && x.code === 'rate_limited', { timeoutMs: 10000 }),
      f.whenClosed({ timeoutMs: 10000 })])));
    // The first error of each flood is in; the server may still be reading the rest.
    let after = before;
    for (const end = Date.now() + 10000; Date.now() < end;) {
      after = await metric(limited, 'caredesk_bad_input_total{reason="rate_limited"}');
      if (after - before >= 10 * 200) break;
      await sleep(50);
    }
    assert.ok(after - before >= 10 * 200, `only ${after - before} frames rate-limited`);
    for (const f of floods) {
      const answered = f.frames.filter((x) => x.type === 'reply' || x.type === 'ack').length;
      assert.ok(answered <= 40, `a flood got ${answered} messages through at 20/s`);
    }
    const t0 = Date.now();
    await served(limited);
    assert.ok(Date.now() - t0 < 3000, `a new customer waited ${Date.now() - t0} ms`);
    for (const f of floods) f.close();
  });

// Sends raw bytes to the REST port and returns what came back within waitMs.
function rawHttp(server, data, waitMs = 1500) {
  return new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('error', () => {});
    s.on('close', () => resolve(out));
    s.write(data);
    setTimeout(() => s.destroy(), waitMs);
  });
}

const statuses = (out) => [...out.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));
const smuggled = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';

test('request smuggling: Content-Length with Transfer-Encoding never runs the hidden request',
  async () => {
    const body = `0\r\n\r\n${smuggled}`;
    for (const te of ['chunked', ' chunked', 'xchunked', 'chunked, identity']) {
      const out = await rawHttp(srv, 'POST /api/articles HTTP/1.1\r\nHost: x\r\n'
        + `Content-Length: ${body.length + 2}\r\nTransfer-Encoding:${te}\r\n`
        + `Content-Type: application/json\r\n\r\n${body}`);
      const got = statuses(out);
      assert.ok(got.length <= 1, `TE "${te}": ${got.length} responses (${got}): smuggled`);
      assert.ok(!/"status"\s*:\s*"ok"/.test(out), `TE "${te}": the hidden /healthz ran`);
    }
    await stillServing();
  });

test('request smuggling: two Content-Length headers, or a list, get 400 and a close', async () => {
  for (const headers of [`Content-Length: 2\r\nContent-Length: ${2 + smuggled.length}`,
    `Content-Length: 2, ${2 + smuggled.length}`, 'Content-Length: 2\r\nContent-Length: 2',
    'Content-Length: +2', 'Content-Length: 0x2']) {
    const out = await rawHttp(srv, `POST /api/articles HTTP/1.1\r\nHost: x\r\n${headers}\r\n`
      + `Content-Type: application/json\r\n\r\n{}${smuggled}`);
    assert.deepEqual(statuses(out), [400], `${JSON.stringify(headers)}: ${statuses(out)}`);
  }
  await stillServing();
});

test('path traversal on static files: .., encoded, double-encoded, backslash, NUL', async () => {
  const paths = [
    '/../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2f..%2fetc%2fpasswd',
    '/%252e%252e/%252e%252e/etc/passwd', '/..%5c..%5c..%5cetc%5cpasswd', '//etc/passwd',
    '/.%2e/.%2e/etc/passwd', '/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd', '/index.html%00.png',
    '/./../web/../../etc/passwd', '/kb/../../../../etc/passwd', '/static/..%252f..%252fetc/passwd',
  ];
  for (const p of paths) {
    const out = await rawHttp(srv, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 800);
    assert.ok(!/root:.*:0:0:/.test(out), `${p}: leaked /etc/passwd`);
    const got = statuses(out);
    assert.ok(got.length === 0 || got.every((s) => s >= 400 && s < 500), `${p}: ${got}`);
  }
  await stillServing();
});
