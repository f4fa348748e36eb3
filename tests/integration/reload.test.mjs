// SIGHUP (systemctl reload): the server loads and trains its intents again on a worker
// thread and swaps them in. A customer connected before the reload keeps the connection and
// gets the new intents' answers; an intents directory that no longer trains is refused and
// the intents in service stay.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, fixtures } from './lib/server.mjs';
import { openCustomer, ask } from './lib/client.mjs';
import { waitFor } from './lib/wait.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-reload-'));
const intents = path.join(dir, 'intents');
cpSync(fixtures.intents, intents, { recursive: true });
after(() => rmSync(dir, { recursive: true, force: true }));

const giftCards = {
  name: 'gift_cards',
  description: 'Gift cards',
  lang: 'en',
  examples: ['do you sell gift cards', 'can I buy a gift card', 'gift voucher for a friend',
    'how much are your gift cards', 'I want to give a gift card'],
  patterns: ['gift card', 'gift cards', 'gift voucher'],
  response: 'Gift cards come in amounts from 10 to 200 euros, sent by email.',
  action: 'answer',
  queue: 'general',
};

test('SIGHUP: new intents answer on a connection opened before; a set that does not train is refused',
  { timeout: 60000 }, async () => {
    const srv = await startServer({ ...fixtures, intents, args: ['--rate-limit', '0'] });
    try {
      // Before: nothing answers gift cards (that conversation goes to a person).
      const c0 = await openCustomer(srv);
      const before = await ask(c0, 'q1', 'do you sell gift cards?');
      assert.notEqual(before.text, giftCards.response);
      c0.close();
      // A customer in a conversation with the bot across the reload.
      const c = await openCustomer(srv);
      const first = await ask(c, 'q1', 'how do I reset my password');
      assert.equal(first.type, 'reply');

      writeFileSync(path.join(intents, 'gift_cards.json'), JSON.stringify(giftCards));
      srv.proc.kill('SIGHUP');
      // Customers are answered while the worker trains.
      for (let i = 0; i < 20; i++) {
        const busy = await openCustomer(srv);
        const r = await ask(busy, `b${i}`, 'how do I reset my password');
        assert.equal(r.type, 'reply', JSON.stringify(r));
        busy.close();
      }
      const done = await waitFor(() => srv.events('intents_reloaded').length > 0
        && srv.events('intents_reloaded'), { timeoutMs: 30000 });
      assert.equal(done.length, 1, JSON.stringify(srv.logs.slice(-5)));
      assert.equal(done[0].intents, readdirSync(intents).length);
      const after1 = await ask(c, 'q2', 'do you sell gift cards?');
      assert.equal(after1.text, giftCards.response, JSON.stringify(after1));
      assert.equal(c.closed, null, 'the connection stays open');

      // A directory with nothing that trains: refused, and the intents in service stay.
      for (const f of readdirSync(intents)) rmSync(path.join(intents, f));
      writeFileSync(path.join(intents, 'broken.json'), '{"name": "broken", ');
      srv.proc.kill('SIGHUP');
      const failed = await waitFor(() => srv.events('intents_reload_failed').length > 0
        && srv.events('intents_reload_failed'), { timeoutMs: 30000 });
      assert.match(failed[0].error, /no usable intents/);
      assert.equal(srv.events('intents_reloaded').length, 1);
      const after2 = await ask(c, 'q3', 'can I buy a gift card for my sister');
      assert.equal(after2.text, giftCards.response, JSON.stringify(after2));
      assert.equal(c.closed, null);
      c.close();
    } finally {
      await srv.stop();
    }
  });

test('SIGHUP: the phrases file is read again; a bad one keeps the wording in service', { timeout: 60000 }, async () => {
  const file = path.join(dir, 'phrases.json');
  const words = (handoff) => writeFileSync(file, JSON.stringify({ en: { handoff } }));
  const handoffText = async (srv) => {
    const c = await openCustomer(srv, { type: 'hello', lang: 'en' });
    const r = await ask(c, 'm1', 'who won the football match last night?');
    c.close();
    assert.equal(r.action, 'handoff', JSON.stringify(r));
    return r.text;
  };
  words('One moment: a teammate will take it from here.');
  const srv = await startServer({ ...fixtures, args: ['--phrases', file] });
  try {
    assert.equal(await handoffText(srv), 'One moment: a teammate will take it from here.');
    words('Passing you to a colleague now.');
    srv.proc.kill('SIGHUP');
    await waitFor(() => srv.events('phrases_reloaded').length === 1, { timeoutMs: 30000 });
    assert.equal(await handoffText(srv), 'Passing you to a colleague now.');
    writeFileSync(file, '{"en": {"hand_off": "typo"}}');
    srv.proc.kill('SIGHUP');
    const failed = await waitFor(() => srv.events('phrases_reload_failed').length > 0
      && srv.events('phrases_reload_failed'), { timeoutMs: 30000 });
    assert.match(failed[0].error, /hand_off/);
    assert.equal(await handoffText(srv), 'Passing you to a colleague now.');
    // The intents were reloaded both times, and they still train.
    await waitFor(() => srv.events('intents_reloaded').length === 2, { timeoutMs: 30000 });
    assert.equal(srv.events('intents_reloaded').length, 2);
  } finally {
    await srv.stop();
  }
});
