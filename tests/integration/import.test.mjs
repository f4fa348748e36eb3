// Help-centre imports: `caredesk import` on real Zendesk, Intercom and Freshdesk exports
// (tests/integration/fixtures/helpcentre), then the real server serving what was imported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, runCaredesk, repoRoot } from './lib/server.mjs';

const fx = (name) => path.join(repoRoot, 'tests/integration/fixtures/helpcentre', name);

test('help-centre exports import, re-import idempotently and are served without tags', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-import-'));
  const db = path.join(dir, 'caredesk.db');
  let srv;
  try {
    // Zendesk, sniffed: two problems reported as FILE:ITEM, the rest loaded.
    let r = await runCaredesk(['import', '--db', db, fx('zendesk.json')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /zendesk\.json:articles\[2\]: article 360001234503 has no title/);
    assert.match(r.stderr, /zendesk\.json:articles\[3\]: article 360001234504: language 'zh-tw' is not supported/);
    assert.match(r.stdout, /new 3, updated 0, unchanged 0, skipped 2/);

    // The same export again: nothing changes.
    r = await runCaredesk(['import', '--from', 'zendesk', '--db', db, fx('zendesk.json')]);
    assert.match(r.stdout, /new 0, updated 0, unchanged 3, skipped 2/);

    // Intercom and Freshdesk, sniffed, in one command.
    r = await runCaredesk(['import', '--db', db, fx('intercom.json'), fx('freshdesk.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /new 5, updated 0, unchanged 0, skipped 0/);

    // A named format that does not match, and a truncated file: reported, nothing written.
    r = await runCaredesk(['import', '--from', 'freshdesk', '--db', db, fx('intercom.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /intercom\.json: not a Freshdesk solutions export/);
    r = await runCaredesk(['import', '--db', db, fx('truncated.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /truncated\.json: not valid JSON .*truncated; nothing imported/);
    assert.match(r.stdout, /new 0, updated 0, unchanged 0/);
    r = await runCaredesk(['import', '--from', 'helpscout', '--db', db, fx('zendesk.json')]);
    assert.equal(r.code, 2);

    // A later export: one article changed (a revision), one deleted at the source (reported).
    r = await runCaredesk(['import', '--db', db, fx('zendesk-later.json')]);
    assert.match(r.stdout, /new 0, updated 1, unchanged 1, skipped 2, no longer in the export 1/);
    assert.match(r.stderr, /zendesk-360001234505: imported from zendesk before but not in these files/);

    srv = await startServer({ db, dir });
    const search = async (q, lang) => {
      const res = await fetch(`${srv.url}/api/search?q=${encodeURIComponent(q)}${lang ? `&lang=${lang}` : ''}`);
      assert.equal(res.status, 200);
      return (await res.json()).hits;
    };
    let hits = await search('return unworn item label carrier');
    assert.equal(hits[0].id, 'zendesk-360001234501');
    for (const h of hits) assert.doesNotMatch(h.passage, /<\/?[a-z!]/i, `no tag in passage ${h.passage}`);
    assert.doesNotMatch(JSON.stringify(hits), /document\.cookie|color: red/);

    hits = await search('write RMA on the box seal zebra parcels');
    assert.equal(hits[0].id, 'zendesk-360001234501');
    assert.doesNotMatch(hits[0].passage, /<\/?[a-z!]/i);

    // The Spanish article (kept though gone at the source) and the French translation.
    hits = await search('devolver artículo plazo', 'es');
    assert.equal(hits[0].id, 'zendesk-360001234505');
    hits = await search('modifier adresse livraison commande', 'fr');
    assert.equal(hits[0].id, 'intercom-6871119-fr');
    hits = await search('download invoice billing');
    assert.equal(hits[0].id, 'freshdesk-5000123001');

    // Drafts stay drafts: not found, no page.
    for (const q of ['gift wrapping quokka plushies', 'loyalty points wombat owners', 'refund timelines narwhal mugs']) {
      hits = await search(q);
      assert.ok(!hits.some((h) => /^(zendesk-360001234502|intercom-6871120|freshdesk-5000123002)$/.test(h.id)), q);
    }
    const draftPage = await fetch(`${srv.url}/kb/zendesk-360001234502`);
    await draftPage.text();
    assert.equal(draftPage.status, 404);

    // The article's page: the converted Markdown rendered, scripts gone, text escaped.
    const page = await fetch(`${srv.url}/kb/zendesk-360001234501`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<h1>Returning an item<\/h1>/);
    assert.match(html, /<strong>any unworn<\/strong>/);
    assert.match(html, /<a href="https:\/\/example\.com\/policy">the returns policy<\/a>/);
    assert.match(html, /&lt;RMA&gt;/);
    assert.doesNotMatch(html, /document\.cookie|<blink|color: red/);
  } finally {
    if (srv) await srv.stop({ keepDir: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
