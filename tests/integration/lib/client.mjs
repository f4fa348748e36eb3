// A websocket client for tests: buffers every frame so a test can wait for
// the next one matching a predicate, and records how the socket closed.
//
//   const c = await connect(srv.wsUrl + '/chat');
//   c.send({ type: 'message', id: 'm1', text: 'hello' });
//   const reply = await c.next((f) => f.type === 'reply');
import WebSocket from 'ws';

export async function connect(url, { origin, headers = {}, timeoutMs = 5000, insecure } = {}) {
  const opts = { headers: { ...headers } };
  // Tests use self-signed certificates for wss.
  if (insecure || url.startsWith('wss:')) opts.rejectUnauthorized = false;
  if (origin) opts.origin = origin;
  const ws = new WebSocket(url, opts);
  const c = {
    ws,
    frames: [],   // every parsed frame, in order
    raw: [],      // every raw message (string or Buffer)
    closed: null, // { code, reason } once closed
    waiters: [],
    send(obj) { ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); },
    sendRaw(data, options) { ws.send(data, options); },
    // Resolves with the first frame after position `from` (default: not yet
    // consumed) matching pred; rejects after timeoutMs.
    next(pred = () => true, { timeoutMs: t = 5000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          while (c.cursor < c.frames.length) {
            const f = c.frames[c.cursor++];
            if (pred(f)) return resolve(f), true;
          }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(() => {
          c.waiters = c.waiters.filter((w) => w !== check);
          reject(new Error(`no matching frame within ${t} ms; got ${JSON.stringify(c.frames)}`
            + (c.closed ? ` (closed ${c.closed.code})` : '')));
        }, t);
        c.waiters.push(() => {
          if (check()) { clearTimeout(timer); return true; }
          return false;
        });
      });
    },
    cursor: 0,
    // Resolves once the replay a resume's welcome announced has arrived: the stored frames up
    // to welcome.seq (at once when it announced none).
    async replayed(welcome, { timeoutMs: t = 5000 } = {}) {
      if (welcome.seq > 0) {
        await c.next((f) => f.type !== 'welcome' && typeof f.seq === 'number' && f.seq >= welcome.seq,
          { timeoutMs: t });
      }
    },
    // Resolves with { code, reason } when the socket closes.
    whenClosed({ timeoutMs: t = 5000 } = {}) {
      return new Promise((resolve, reject) => {
        if (c.closed) return resolve(c.closed);
        const timer = setTimeout(() => reject(new Error(`not closed within ${t} ms`)), t);
        ws.once('close', () => { clearTimeout(timer); resolve(c.closed); });
      });
    },
    close(code, reason) { ws.close(code, reason); },
    terminate() { ws.terminate(); },
  };
  ws.on('message', (data, isBinary) => {
    c.raw.push(data);
    let f;
    try { f = JSON.parse(isBinary ? data : data.toString()); } catch { f = { unparsed: String(data) }; }
    c.frames.push(f);
    c.waiters = c.waiters.filter((w) => !w());
  });
  ws.on('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
    c.waiters = c.waiters.filter((w) => !w());
  });
  ws.on('error', () => { /* surfaced through open or close */ });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect ${url} timed out`)), timeoutMs);
    ws.once('open', () => { clearTimeout(timer); resolve(); });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`refused: HTTP ${res.statusCode}`), { status: res.statusCode }));
    });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
  return c;
}

// A customer on server s's /chat that says hello (none when hello is null) and keeps the
// answer, a welcome or an error, as c.welcome.
export async function openCustomer(s, hello = { type: 'hello', lang: 'en', name: 'Sam' }) {
  const c = await connect(`${s.wsUrl}/chat`);
  if (hello) {
    c.send(hello);
    c.welcome = await c.next((f) => f.type === 'welcome' || f.type === 'error');
  }
  return c;
}

// An agent on server s's /agent, signed in with token; the answer, ready or an error, is a.ready.
export async function openAgent(s, token) {
  const a = await connect(`${s.wsUrl}/agent`);
  a.send({ type: 'auth', token });
  a.ready = await a.next((f) => f.type === 'ready' || f.type === 'error');
  return a;
}

// Sends customer c the message text with client id id; resolves with the answer to it: the
// bot's reply, the ack of a message for an agent, or an error.
export function ask(c, id, text) {
  c.send({ type: 'message', id, text });
  return c.next((f) => (f.type === 'reply' || f.type === 'ack' || f.type === 'error')
    && (f.reply_to === id || f.type === 'error'));
}

// An agent's whole turn on a queued conversation: claims it, sends text,
// closes it with disposition, each step waiting for the server's answer.
export async function claimReplyClose(agent, conversation, text, disposition = 'password') {
  agent.send({ type: 'claim', conversation });
  await agent.next((f) => f.type === 'assigned' && f.conversation === conversation);
  agent.send({ type: 'message', conversation, id: 'a1', text });
  await agent.next((f) => f.type === 'ack' && f.reply_to === 'a1');
  agent.send({ type: 'close', conversation, disposition, note: '' });
  await agent.next((f) => f.type === 'closed' && f.conversation === conversation);
}
