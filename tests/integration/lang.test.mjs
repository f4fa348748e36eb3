// The language of a chat whose widget sends no hello.lang: detected from the
// customer's first messages among the languages of the shipped intents and KB
// (English and Spanish), against the real server; and `caredesk ask` without --lang.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, runCaredesk } from './lib/server.mjs';
import { openCustomer, ask } from './lib/client.mjs';

let srv;

before(async () => { srv = await startServer(); }); // the shipped ./intents and ./kb
after(async () => { if (srv) await srv.stop(); });

async function customer(hello) {
  const c = await openCustomer(srv, hello);
  if (hello) assert.equal(c.welcome.type, 'welcome');
  return c;
}

const question = '¿cuánto cobran por el envío a Texas?';

test('a Spanish question without hello.lang gets the Spanish answer', async () => {
  const c = await customer({ type: 'hello', name: 'Lucía' });
  const r = await ask(c, 'm1', question);
  assert.equal(r.type, 'reply');
  assert.equal(r.action, 'answer');
  assert.equal(r.intent, 'envio');
  assert.ok(r.articles.some((a) => a.id === 'shipping-es'), JSON.stringify(r.articles));
  // Decided once: the next message is read as Spanish too.
  const r2 = await ask(c, 'm2', 'quiero devolver una chaqueta');
  assert.equal(r2.intent, 'devolucion');
  c.close();
});

test('a first message without hello is detected too', async () => {
  const c = await customer(null);
  c.send({ type: 'message', id: 'x1', text: 'mi tarjeta de regalo no funciona' });
  await c.next((f) => f.type === 'welcome');
  const r = await c.next((f) => f.type === 'reply' || f.type === 'error');
  assert.equal(r.type, 'reply');
  assert.equal(r.intent, 'tarjeta_regalo');
  c.close();
});

test('the bot speaks the conversation\'s language when it hands off and when a person is asked for', async () => {
  const c = await customer({ type: 'hello', lang: 'es', name: 'Lucía' });
  const r = await ask(c, 'm1', '¿quién ganó el partido de fútbol de anoche?');
  assert.equal(r.type, 'reply');
  assert.equal(r.action, 'handoff', JSON.stringify(r));
  assert.match(r.text, /^Te paso con una persona de nuestro equipo/, r.text);
  c.close();
  const e = await customer({ type: 'hello', lang: 'en' });
  const r2 = await ask(e, 'm1', 'who won the football match last night');
  assert.equal(r2.action, 'handoff', JSON.stringify(r2));
  assert.match(r2.text, /^I'm connecting you with a member of our team/, r2.text);
  e.close();
});

test('a deployment words the bot in its own languages (setting phrases); a bad file stops the start', async () => {
  const dir = srv.dir;
  const file = path.join(dir, 'phrases.json');
  writeFileSync(file, JSON.stringify({
    fr: { handoff: 'Je vous passe une personne de notre équipe.' },
    en: { person: 'One moment: a Northwind teammate is on the way.' },
  }));
  const s = await startServer({ args: ['--phrases', file] });
  try {
    const c = await openCustomer(s, { type: 'hello', lang: 'fr' });
    const r = await ask(c, 'm1', 'qui a gagné le match de football hier soir ?');
    assert.equal(r.action, 'handoff', JSON.stringify(r));
    assert.equal(r.text, 'Je vous passe une personne de notre équipe.');
    c.close();
    assert.equal(s.events('phrases_loaded').length, 1);
  } finally {
    await s.stop();
  }
  const bad = path.join(dir, 'bad-phrases.json');
  writeFileSync(bad, JSON.stringify({ fr: { hand_off: 'Bonjour' } }));
  const r = await runCaredesk(['serve', '--port', '0', '--db', path.join(dir, 'x.db'), '--phrases', bad],
    { timeoutMs: 20000 }); // a server that took the file would not stop by itself
  assert.equal(r.signal, null, 'the server started with a bad phrases file');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /setting 'phrases': .*'fr': no phrase 'hand_off'/);
});

test('an English question without hello.lang stays English', async () => {
  const c = await customer({ type: 'hello' });
  const r = await ask(c, 'm1', 'how much is shipping to Texas');
  assert.equal(r.intent, 'shipping_info');
  c.close();
});

test('hello.lang is kept as given', async () => {
  const c = await customer({ type: 'hello', lang: 'en' });
  const r = await ask(c, 'm1', question);
  assert.notEqual(r.intent, 'envio');
  c.close();
});

test('caredesk ask without --lang detects the language', async () => {
  const es = await runCaredesk(['ask', question]);
  assert.equal(es.code, 0, es.stderr);
  assert.equal(JSON.parse(es.stdout).intent, 'envio');
  const en = await runCaredesk(['ask', '--lang', 'en', 'how much is shipping to Texas']);
  assert.equal(JSON.parse(en.stdout).intent, 'shipping_info');
});
