// Static files on the wire: the gzip copies `make` builds, ETags, revalidation with 304, and
// the widget's size as a browser receives it. Raw node:http requests, so the bytes counted
// are the bytes sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, repoRoot } from './lib/server.mjs';

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

let srv;
let web;
before(async () => {
  // A web root of its own, so that the test can make a compressed copy go stale.
  web = mkdtempSync(path.join(tmpdir(), 'caredesk-web-'));
  const js = 'console.log("hello");\n'.repeat(200);
  writeFileSync(path.join(web, 'app.js'), js);
  writeFileSync(path.join(web, 'app.js.gz'), zlib.gzipSync(js, { level: 9 }));
  writeFileSync(path.join(web, 'plain.css'), 'body { color: black }\n');
  writeFileSync(path.join(web, 'stale.js'), 'let old = 1;\n'.repeat(100));
  writeFileSync(path.join(web, 'stale.js.gz'), zlib.gzipSync('let old = 1;\n'.repeat(100)));
  writeFileSync(path.join(web, 'stale.js'), 'let fresh = 2;\n'.repeat(100));
  const past = new Date(Date.now() - 60000);
  utimesSync(path.join(web, 'stale.js.gz'), past, past);
  srv = await startServer({ web });
});
after(async () => {
  await srv.stop();
  rmSync(web, { recursive: true, force: true });
});

test('a client that accepts gzip gets the compressed copy, with an ETag and no-cache', async () => {
  const plain = readFileSync(path.join(web, 'app.js'));
  const gz = await get(`${srv.url}/app.js`, { 'accept-encoding': 'gzip, deflate, br' });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(gz.headers['cache-control'], 'no-cache');
  assert.equal(gz.headers.vary, 'Accept-Encoding');
  assert.match(gz.headers['content-type'], /^text\/javascript/);
  assert.match(gz.headers.etag, /^"[0-9a-f]+-[0-9a-f]+-gz"$/);
  assert.equal(Number(gz.headers['content-length']), gz.body.length);
  assert.ok(gz.body.length < plain.length / 5, `${gz.body.length} bytes compressed`);
  assert.deepEqual(zlib.gunzipSync(gz.body), plain);

  const id = await get(`${srv.url}/app.js`);
  assert.equal(id.status, 200);
  assert.equal(id.headers['content-encoding'], undefined);
  assert.deepEqual(id.body, plain);
  assert.notEqual(id.headers.etag, gz.headers.etag, 'each encoding has its own ETag');

  const refused = await get(`${srv.url}/app.js`, { 'accept-encoding': 'gzip;q=0, identity' });
  assert.equal(refused.headers['content-encoding'], undefined);
  assert.deepEqual(refused.body, plain);
});

test('If-None-Match with the current ETag gets 304 and no body; another ETag gets the file', async () => {
  const first = await get(`${srv.url}/app.js`, { 'accept-encoding': 'gzip' });
  const etag = first.headers.etag;
  const again = await get(`${srv.url}/app.js`, { 'accept-encoding': 'gzip', 'if-none-match': etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  assert.equal(again.headers.etag, etag);
  assert.equal(again.headers['cache-control'], 'no-cache');
  const listed = await get(`${srv.url}/app.js`, {
    'accept-encoding': 'gzip', 'if-none-match': `"nope", W/${etag}`,
  });
  assert.equal(listed.status, 304, 'a weak match in a list is a match');
  const other = await get(`${srv.url}/app.js`, { 'accept-encoding': 'gzip', 'if-none-match': '"nope"' });
  assert.equal(other.status, 200);
  // The plain copy's ETag does not validate the compressed one.
  const plainTag = (await get(`${srv.url}/app.js`)).headers.etag;
  const cross = await get(`${srv.url}/app.js`, { 'accept-encoding': 'gzip', 'if-none-match': plainTag });
  assert.equal(cross.status, 200);
  // Files without a compressed copy have ETags too, and no Vary.
  const css = await get(`${srv.url}/plain.css`, { 'accept-encoding': 'gzip' });
  assert.equal(css.status, 200);
  assert.equal(css.headers['content-encoding'], undefined);
  assert.equal(css.headers.vary, undefined);
  const css304 = await get(`${srv.url}/plain.css`, { 'if-none-match': css.headers.etag });
  assert.equal(css304.status, 304);
});

test('a compressed copy older than its file is not served', async () => {
  const res = await get(`${srv.url}/stale.js`, { 'accept-encoding': 'gzip' });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-encoding'], undefined);
  assert.match(res.body.toString(), /fresh/);
});

test('the shipped widget is under 30 KB on the wire and revalidates with 304', async () => {
  const gzPath = path.join(repoRoot, 'web/widget.js.gz');
  assert.ok(existsSync(gzPath), 'web/widget.js.gz is made by make (make web-gz)');
  const shop = await startServer();
  try {
    const res = await get(`${shop.url}/widget.js`, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.ok(res.body.length < 30 * 1024, `widget.js is ${res.body.length} bytes on the wire`);
    assert.deepEqual(zlib.gunzipSync(res.body), readFileSync(path.join(repoRoot, 'web/widget.js')));
    const again = await get(`${shop.url}/widget.js`, {
      'accept-encoding': 'gzip, deflate, br', 'if-none-match': res.headers.etag,
    });
    assert.equal(again.status, 304);
    const page = await get(`${shop.url}/`, { 'accept-encoding': 'gzip' });
    assert.equal(page.headers['content-encoding'], 'gzip');
    assert.match(zlib.gunzipSync(page.body).toString(), /<script/);
  } finally {
    await shop.stop();
  }
});
