// A websocket client written on a raw TCP socket, for hostile-client tests:
// it can split a frame at any byte, send invalid UTF-8 or bad opcodes, write
// a handshake one byte at a time, and stop reading. It parses what the
// server sends (unmasked text and close frames).
//
//   const c = await rawConnect(port, '/chat');
//   c.write(wsFrame('{"type":"hello"}'));
//   const f = await c.next((x) => x.type === 'welcome');
import net from 'node:net';
import crypto from 'node:crypto';
import { sleep } from './wait.mjs';

// Encodes one client frame (masked, as clients must). payload: string or Buffer.
export function wsFrame(payload, { opcode = 1, fin = true, mask = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const n = data.length;
  let header;
  if (n < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | n]);
  } else if (n < 65536) {
    header = Buffer.alloc(4);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = (mask ? 0x80 : 0) | 126;
    header.writeUInt16BE(n, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = (mask ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(BigInt(n), 2);
  }
  if (!mask) return Buffer.concat([header, data]);
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = data[i] ^ key[i % 4];
  return Buffer.concat([header, key, body]);
}

export function handshake(path, port, { origin } = {}) {
  const key = crypto.randomBytes(16).toString('base64');
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n`
    + `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`
    + (origin ? `Origin: ${origin}\r\n` : '') + '\r\n';
}

// Opens a TCP connection and (unless opts.noHandshake) completes the
// websocket handshake, written in pieces of opts.chunk bytes if given.
export async function rawConnect(port, path = '/chat', opts = {}) {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  const c = {
    sock,
    frames: [],
    closeCode: null,
    closed: false,
    cursor: 0,
    waiters: [],
    upgraded: false,
    status: 0,
    write(buf) { if (!sock.destroyed) sock.write(buf); },
    // Writes buf in pieces, waiting gapMs between them so each is read alone.
    async writeSplit(buf, at, gapMs = 5) {
      const cuts = Array.isArray(at) ? at : [at];
      let prev = 0;
      for (const cut of [...cuts, buf.length]) {
        if (cut > prev) c.write(buf.subarray(prev, cut));
        prev = cut;
        await sleep(gapMs);
      }
    },
    next(pred = () => true, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          while (c.cursor < c.frames.length) {
            const f = c.frames[c.cursor++];
            if (pred(f)) { resolve(f); return true; }
          }
          if (c.closed) { reject(new Error(`closed (${c.closeCode}) waiting for a frame`)); return true; }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(() => {
          c.waiters = c.waiters.filter((w) => w !== wrapped);
          reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(c.frames).slice(0, 500)}`));
        }, timeoutMs);
        const wrapped = () => { if (check()) { clearTimeout(timer); return true; } return false; };
        c.waiters.push(wrapped);
      });
    },
    whenClosed(timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        if (c.closed) return resolve(c.closeCode);
        const timer = setTimeout(() => reject(new Error('not closed')), timeoutMs);
        sock.once('close', () => { clearTimeout(timer); resolve(c.closeCode); });
      });
    },
    destroy() { sock.destroy(); },
  };
  let buf = Buffer.alloc(0);
  const wake = () => { c.waiters = c.waiters.filter((w) => !w()); };
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (!c.upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString();
      c.status = Number(head.split(' ')[1]);
      buf = buf.subarray(end + 4);
      c.upgraded = c.status === 101;
      c.onHead?.();
      if (!c.upgraded) return;
    }
    for (;;) {
      if (buf.length < 2) break;
      const opcode = buf[0] & 0x0f;
      let n = buf[1] & 0x7f;
      let off = 2;
      if (n === 126) { if (buf.length < 4) break; n = buf.readUInt16BE(2); off = 4; }
      else if (n === 127) { if (buf.length < 10) break; n = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + n) break;
      const payload = buf.subarray(off, off + n);
      buf = buf.subarray(off + n);
      if (opcode === 1) {
        let f;
        try { f = JSON.parse(payload.toString('utf8')); } catch { f = { unparsed: payload.toString() }; }
        c.frames.push(f);
      } else if (opcode === 8) {
        c.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      }
    }
    wake();
  });
  sock.on('error', () => {});
  sock.on('close', () => { c.closed = true; wake(); });
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  if (opts.noHandshake) return c;
  const hs = Buffer.from(handshake(path, port, opts));
  const headDone = new Promise((resolve, reject) => {
    c.onHead = resolve;
    sock.once('close', () => reject(new Error('closed during the handshake')));
  });
  if (opts.chunk) await c.writeSplit(hs, Array.from({ length: Math.ceil(hs.length / opts.chunk) - 1 }, (_, i) => (i + 1) * opts.chunk), 2);
  else c.write(hs);
  await headDone;
  if (!c.upgraded) throw Object.assign(new Error(`handshake refused: ${c.status}`), { status: c.status });
  return c;
}
