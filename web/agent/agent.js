/* caredesk agent console: the /agent websocket (queue, claim, chat, transfer,
 * close with wrap-up) plus REST for canned replies and earlier conversations.
 *
 * DESIGN. One websocket per console. Signing in opens it and sends auth; the
 * server's "ready" proves the token, an "error" or close 1008 refuses it. The
 * console keeps every open chat in memory (several at once, up to capacity)
 * and shows one; frames for the others raise an unread count. A dropped
 * connection reconnects with backoff and signs in again with the same token. */
(function () {
  'use strict';
  var CD = window.CD, h = CD.h, $ = CD.$;

  var DRIVERS = ['order_status', 'shipping_delay', 'returns', 'refund_status', 'damaged_item',
    'wrong_item', 'payment_failed', 'invoice', 'password_reset', 'two_factor', 'change_email',
    'close_account', 'data_request', 'subscription', 'promo_code', 'gift_card', 'warranty',
    'service_status', 'fraud', 'complaint', 'other'];
  var DEFAULT_QUEUES = ['general', 'orders', 'billing', 'technical'];

  var ws = null;
  var me = { name: '', capacity: 3, queues: [] };
  var queue_items = [];        /* last queue frame, with received_at */
  var queue_seen = {};         /* conversation ids already notified */
  var chats = {};              /* conversation id -> chat */
  var order = [];              /* conversation ids of open chats, oldest first */
  var active = null;
  var attempts = 0;
  var retry_timer = 0;
  var signed_in = false;
  var pickup_target_s = 60;
  var msg_n = 0;

  /* ---------- connection ---------- */
  function set_conn(state, text) {
    var el = $('#conn');
    el.className = 'pill ' + (state === 'online' ? 'ok' : state === 'connecting' ? 'warn' : 'bad');
    el.textContent = text;
  }

  /* Opens the socket and signs in; resolves with the ready frame. */
  function connect(token) {
    return new Promise(function (resolve, reject) {
      var settled = false;
      set_conn('connecting', 'Connecting…');
      var sock;
      try { sock = new WebSocket(CD.ws_url('/agent')); } catch (e) {
        reject(Object.assign(new Error('cannot open the agent connection'), { status: 0 }));
        return;
      }
      ws = sock;
      sock.onopen = function () { sock.send(JSON.stringify({ type: 'auth', token: token })); };
      sock.onmessage = function (ev) {
        var f;
        try { f = JSON.parse(ev.data); } catch (e) { return; }
        if (!f || typeof f.type !== 'string') return;
        if (!settled) {
          if (f.type === 'ready') {
            settled = true;
            attempts = 0;
            on_ready(f);
            resolve({ name: me.name });
            return;
          }
          if (f.type === 'error') {
            settled = true;
            var err = new Error(f.message || 'sign-in refused');
            err.status = f.code === 'forbidden' ? 403 : 401;
            reject(err);
            return;
          }
        }
        on_frame(f);
      };
      sock.onclose = function (ev) {
        if (ws === sock) ws = null;
        if (!settled) {
          settled = true;
          var err = new Error(ev.code === 1008 ? 'token refused' : 'the server closed the connection');
          err.status = ev.code === 1008 ? 401 : 0;
          reject(err);
          set_conn('offline', 'Offline');
          return;
        }
        if (ev.code === 1008) { CD.sign_out('The server no longer accepts this token.'); return; }
        if (signed_in) schedule_retry();
      };
    });
  }
  function schedule_retry() {
    var delay = Math.round(Math.random() * Math.min(30000, 500 * Math.pow(2, attempts++))) + 300;
    set_conn('offline', 'Reconnecting in ' + Math.ceil(delay / 1000) + ' s');
    clearTimeout(retry_timer);
    retry_timer = setTimeout(function () {
      reconnecting = true;
      connect(CD.token()).catch(function (e) {
        if (e.status === 401) CD.sign_out('The server no longer accepts this token.');
      });
    }, delay);
  }
  function send(f) {
    if (!ws || ws.readyState !== 1) { CD.toast('Not connected: the action was not sent.', true); return false; }
    ws.send(JSON.stringify(f));
    return true;
  }

  var reconnecting = false;
  var ready_at = 0;
  function set_available(on) {
    $('#available').checked = on;
    $('#available-label').textContent = on ? 'Available for new chats' : 'Away: no new chats';
  }
  function on_ready(f) {
    ready_at = Date.now();
    var a = f.agent;
    if (a && typeof a === 'object') {
      me.name = a.name || me.name;
      me.capacity = a.capacity || f.capacity || me.capacity;
      me.queues = a.skills || a.queues || [];
    } else {
      me.name = a || me.name;
      me.capacity = f.capacity || me.capacity;
    }
    if (f.queues) me.queues = f.queues;
    if (f.pickup_target_s) pickup_target_s = f.pickup_target_s;
    if (a && typeof a === 'object' && typeof a.available === 'boolean') set_available(a.available);
    set_conn('online', 'Online');
    if (Array.isArray(f.queue)) on_queue({ items: f.queue });
    else if (f.queue && Array.isArray(f.queue.items)) on_queue(f.queue);
    var who = $('.topbar .who');
    if (who && me.name) who.textContent = 'Signed in as ' + me.name;
    signed_in = true;
    /* After a reconnect, tell the server the availability chosen here. */
    if (a && typeof a === 'object' && a.available !== $('#available').checked && reconnecting) {
      send({ type: 'status', available: $('#available').checked });
    }
    render_capacity();
  }

  /* ---------- frames ---------- */
  function on_frame(f) {
    switch (f.type) {
    case 'queue': on_queue(f); break;
    case 'assigned': on_assigned(f); break;
    case 'customer_message': on_customer_message(f); break;
    case 'typing': on_typing(f); break;
    case 'customer_left':
      system_note(f.conversation, f.reason === 'closed' ? 'The customer closed the chat.' :
        'The customer\u2019s connection dropped (they may come back).');
      break;
    case 'customer_back': system_note(f.conversation, 'The customer is back.'); break;
    case 'ack': on_ack(f); break;
    case 'closed': on_closed(f); break;
    case 'transferred':
      CD.toast('Transferred to ' + CD.humanize(f.queue || 'another queue') + '.');
      drop_chat(f.conversation);
      break;
    case 'rating': system_note(f.conversation, 'The customer rated the chat ' + f.score + ' of 5.'); break;
    case 'status':
      if (typeof f.available === 'boolean') set_available(f.available);
      render_capacity();
      break;
    case 'error': on_error(f); break;
    default: break;
    }
  }

  /* closed confirms our close, or tells that the customer ended the chat:
   * then the chat stays open here for the wrap-up. */
  function on_closed(f) {
    var c = chats[f.conversation];
    if (!c) return;
    if (c.closing) { drop_chat(f.conversation); return; }
    c.closed = true;
    system_note(f.conversation, 'The conversation is closed. Add the wrap-up to finish.');
    if (active === f.conversation) select(active);
  }

  function on_queue(f) {
    var now = Date.now();
    var items = Array.isArray(f.items) ? f.items : [];
    var fresh = [];
    items.forEach(function (it) {
      it.received_at = now;
      if (!queue_seen[it.conversation]) { queue_seen[it.conversation] = true; fresh.push(it.conversation); }
    });
    queue_items = items;
    render_queue(fresh);
    if (fresh.length) notify('New chat waiting');
    update_title();
  }

  function on_assigned(f) {
    var id = f.conversation;
    var c = chats[id] || { id: id, items: [], unread: 0 };
    c.customer = f.customer || {};
    c.triage = f.triage || {};
    c.queue = typeof f.queue === 'string' ? f.queue : (f.triage && f.triage.queue) || c.queue;
    c.items = [];
    (f.transcript || []).forEach(function (m) { c.items.push(normalize(m)); });
    c.closed = false;
    chats[id] = c;
    if (order.indexOf(id) < 0) order.push(id);
    queue_items = queue_items.filter(function (q) { return q.conversation !== id; });
    render_queue([]);
    select(id);
    render_capacity();
    /* Chats handed back after a reload or reconnect are not news. */
    if (Date.now() - ready_at > 2000) notify('Chat assigned');
  }

  function art_title(a) {
    return a.title || CD.humanize(a.id);
  }

  function normalize(m) {
    var from = m.from || m.role || m.author || m.sender || 'customer';
    if (from === 'system' || from === 'event') from = 'system';
    return {
      seq: m.seq, from: from, text: m.text || '', at: m.at || m.ts || m.created_at || m.time,
      agent: m.agent && (m.agent.name || m.agent), action: m.action, intent: m.intent,
      confidence: m.confidence, articles: m.articles || [], choices: m.choices || null,
      status_update: m.status_update || null
    };
  }

  function on_customer_message(f) {
    var c = chats[f.conversation];
    if (!c) return;
    if (f.seq && c.items.some(function (x) { return x.seq === f.seq; })) return;
    c.items.push({ seq: f.seq, from: 'customer', text: f.text || '', at: f.at || Date.now() / 1000 });
    c.typing_until = 0;
    if (active === f.conversation) {
      append_item(c.items[c.items.length - 1]);
      render_typing();
      if (document.hidden) { c.unread++; notify(); }
    } else {
      c.unread++;
      notify();
    }
    render_mine();
    update_title();
  }
  function on_typing(f) {
    var c = chats[f.conversation];
    if (!c || f.from === 'agent') return;
    c.typing_until = Date.now() + 5000;
    render_typing();
    setTimeout(render_typing, 5100);
  }
  function on_ack(f) {
    var c = chats[f.conversation];
    if (!c) return;
    c.items.forEach(function (x) {
      if (x.id && x.id === f.reply_to) {
        x.pending = false;
        if (f.seq) x.seq = f.seq;
        if (f.tracking_id && x.status_update) x.status_update.tracking_id = f.tracking_id;
      }
    });
    if (active === f.conversation) render_transcript();
  }
  function on_error(f) {
    var code = f.code || '';
    if (code === 'already_claimed') {
      CD.toast('Someone else already took that chat.', true);
      queue_items = queue_items.filter(function (q) { return q.conversation !== f.conversation; });
      render_queue([]);
      return;
    }
    if (code === 'at_capacity') { CD.toast('You are at your chat limit (' + me.capacity + ').', true); return; }
    if (code === 'not_assigned' && f.conversation != null) {
      CD.toast('That chat is no longer yours.', true);
      drop_chat(f.conversation);
      return;
    }
    if (f.conversation != null && chats[f.conversation] && chats[f.conversation].closing) chats[f.conversation].closing = false;
    CD.toast(f.message || ('Error: ' + code), true);
  }
  function system_note(id, text) {
    var c = chats[id];
    if (!c) return;
    var it = { from: 'system', text: text, at: Date.now() / 1000 };
    c.items.push(it);
    if (active === id) append_item(it);
  }

  /* ---------- queue ---------- */
  function render_queue(fresh) {
    var ul = $('#queue');
    CD.clear(ul);
    $('#queue-count').textContent = String(queue_items.length);
    $('#queue-count').className = 'pill' + (queue_items.length ? ' warn' : '');
    if (!queue_items.length) {
      ul.appendChild(h('li', { class: 'empty' }, ['Nobody is waiting.']));
      return;
    }
    var full = order.length >= me.capacity;
    queue_items.forEach(function (it) {
      var li = h('li', { class: fresh.indexOf(it.conversation) >= 0 ? 'new' : '', 'data-conversation': it.conversation }, [
        h('div', { class: 'top' }, [
          h('span', { class: 'wait', 'data-wait': '1', text: CD.dur(it.waiting_s) }),
          it.queue ? h('span', { class: 'pill brand', text: it.queue }) : null,
          it.intent ? h('span', { class: 'pill', title: 'The bot\u2019s guess', text: CD.humanize(it.intent) }) : null,
          it.priority && it.priority <= 2 ? h('span', { class: 'pill bad', text: 'priority ' + it.priority }) : null,
          it.offline ? h('span', { class: 'pill warn', text: 'offline ticket' }) : null,
          it.customer ? h('span', { class: 'small muted', text: typeof it.customer === 'string' ? it.customer : it.customer.name || '' }) : null
        ]),
        h('button', {
          class: 'btn small primary take', type: 'button', disabled: full ? true : null,
          'aria-label': 'Take chat' + (it.preview ? ': ' + it.preview.slice(0, 60) : ''),
          onclick: function () { claim(it.conversation); }
        }, ['Take']),
        h('p', { class: 'preview' + (it.preview ? '' : ' muted'), text: it.preview || 'No preview: take the chat to read it.' })
      ]);
      ul.appendChild(li);
    });
    tick();
  }
  function tick() {
    var now = Date.now();
    CD.$$('#queue li[data-conversation]').forEach(function (li) {
      var it = queue_items.filter(function (q) { return String(q.conversation) === li.dataset.conversation; })[0];
      if (!it) return;
      var w = (+it.waiting_s || 0) + (now - it.received_at) / 1000;
      var el = li.querySelector('[data-wait]');
      el.textContent = CD.dur(w);
      el.className = 'wait' + (w > pickup_target_s ? ' late' : '');
      el.title = w > pickup_target_s ? 'Past the ' + pickup_target_s + ' s pickup target' : 'Within the pickup target';
    });
  }
  setInterval(tick, 1000);

  function claim(id) {
    if (order.length >= me.capacity) { CD.toast('You are at your chat limit (' + me.capacity + ').', true); return; }
    send({ type: 'claim', conversation: id });
  }

  /* ---------- my chats ---------- */
  function cust_name(c) {
    var cu = c.customer || {};
    return cu.name || cu.email || ('Visitor #' + c.id);
  }
  function render_mine() {
    var ul = $('#mine');
    CD.clear(ul);
    if (!order.length) { ul.appendChild(h('li', { class: 'empty' }, ['No open chats.'])); return; }
    order.forEach(function (id) {
      var c = chats[id];
      var last = c.items.filter(function (x) { return x.from !== 'system'; }).slice(-1)[0];
      ul.appendChild(h('li', null, [h('button', {
        type: 'button', 'aria-current': active === id ? 'true' : null, 'aria-controls': 'chat-pane',
        onclick: function () { select(id); }
      }, [
        h('span', { class: 'name', text: cust_name(c) }),
        c.unread ? h('span', { class: 'unread', text: String(c.unread), 'aria-label': c.unread + ' unread' }) : h('span'),
        h('span', { class: 'last', text: last ? (last.from === 'agent' ? 'You: ' : '') + last.text : '' })
      ])]));
    });
  }
  function render_capacity() {
    $('#capacity-line').textContent = order.length + ' of ' + me.capacity + ' chats' +
      (order.length >= me.capacity ? ' (at your limit)' : '');
    render_mine();
    render_queue([]);
  }

  function select(id) {
    active = id;
    var c = chats[id];
    $('#no-chat').hidden = !!c;
    $('#chat').hidden = !c;
    $('#cust-card').hidden = !c;
    $('#bot-card').hidden = !c;
    if (!c) { render_mine(); return; }
    c.unread = 0;
    $('#chat-title').textContent = cust_name(c);
    var cu = c.customer || {};
    $('#chat-sub').textContent = [c.queue ? 'Queue: ' + c.queue : '', cu.lang ? 'Language: ' + cu.lang : '',
      'Conversation ' + id].filter(Boolean).join(' · ');
    fill_queues(c.queue);
    render_transcript();
    render_customer(c);
    render_triage(c);
    render_typing();
    render_mine();
    update_title();
    $('#reply-text').value = c.draft || '';
    $('#reply-text').disabled = !!c.closed;
    $('#reply button[type=submit]').disabled = !!c.closed;
    $('#transfer').disabled = !!c.closed;
    $('#close-chat').textContent = c.closed ? 'Wrap up…' : 'Close chat…';
    if (!c.closed) $('#reply-text').focus();
  }

  function render_transcript() {
    var c = chats[active];
    var ol = $('#transcript');
    CD.clear(ol);
    if (!c) return;
    c.items.forEach(function (it) { ol.appendChild(item_el(it)); });
    ol.scrollTop = ol.scrollHeight;
  }
  function append_item(it) {
    var ol = $('#transcript');
    ol.appendChild(item_el(it));
    ol.scrollTop = ol.scrollHeight;
  }
  function item_el(it) {
    var who = it.from === 'customer' ? 'Customer' : it.from === 'bot' ? 'Bot' :
      it.from === 'agent' ? (it.agent && it.agent !== me.name ? it.agent : 'You') : '';
    var msg = it.from === 'bot' ? h('div', { class: 'msg md', html: CD.md(it.text, 3) }) :
      it.status_update ? status_card(it.status_update) : h('div', { class: 'msg', text: it.text });
    if (it.from === 'bot') {
      if (it.articles && it.articles.length) {
        msg.appendChild(h('div', { class: 'offered' }, [h('span', { class: 'muted', text: 'Offered: ' })].concat(
          it.articles.map(function (a) {
            return h('a', { href: a.url || '/kb/' + encodeURIComponent(a.id), target: '_blank', rel: 'noopener', text: art_title(a) });
          }))));
      }
      if (it.choices && it.choices.length) {
        msg.appendChild(h('div', { class: 'choices muted', text: 'Choices: ' + it.choices.map(function (x) {
          return typeof x === 'string' ? x : x.label || x.title || x.intent || x.id;
        }).join(' · ') }));
      }
    }
    var meta = null;
    if (who) {
      meta = h('span', { class: 'who' }, [who, it.at ? ' · ' + CD.time(it.at) : '']);
      if (it.from === 'bot' && it.action) meta.appendChild(h('span', { class: 'pill', text: it.action + (it.confidence != null ? ' ' + Math.round(it.confidence * 100) + '%' : '') }));
      if (it.pending) meta.appendChild(document.createTextNode(' · sending…'));
    }
    return h('li', { class: it.from + (it.pending ? ' pending' : '') }, [meta, msg]);
  }

  function render_customer(c) {
    var cu = c.customer || {};
    var box = CD.clear($('#customer'));
    var rows = [['Name', cu.name], ['Email', cu.email], ['Page', cu.page], ['Language', cu.lang],
      ['Browser', cu.user_agent], ['Started', cu.started ? CD.when(cu.started) : null]];
    var dl = h('dl', { class: 'kv' });
    rows.forEach(function (r) {
      if (!r[1]) return;
      dl.appendChild(h('dt', { text: r[0] }));
      var dd = h('dd');
      if (r[0] === 'Page' && /^https?:/.test(r[1])) dd.appendChild(h('a', { href: r[1], target: '_blank', rel: 'noopener', text: r[1] }));
      else if (r[0] === 'Email') dd.appendChild(h('a', { href: 'mailto:' + r[1], text: r[1] }));
      else dd.textContent = r[1];
      dl.appendChild(dd);
    });
    if (!dl.children.length) dl.appendChild(h('dd', { class: 'muted', text: 'Anonymous visitor: no name or email given.' }));
    box.appendChild(dl);
    var earlier = cu.history || cu.earlier || cu.conversations || [];
    box.appendChild(h('h3', { text: 'Earlier conversations', style: 'margin-top:14px' }));
    if (!earlier.length) { box.appendChild(h('p', { class: 'small muted', text: 'None.' })); return; }
    var ul = h('ul', { class: 'earlier' });
    earlier.slice(0, 8).forEach(function (e) {
      var id = e.conversation || e.id;
      ul.appendChild(h('li', null, [
        h('button', { type: 'button', onclick: function () { show_history(id); }, text: CD.when(e.created || e.started || e.at) || ('#' + id) }),
        e.disposition || e.intent ? h('span', { class: 'pill', style: 'margin-left:6px', text: CD.humanize(e.disposition || e.intent) }) : null,
        e.state ? h('span', { class: 'small muted', text: ' ' + e.state }) : null,
        e.summary || e.preview ? h('div', { class: 'small muted', text: e.summary || e.preview }) : null
      ]));
    });
    box.appendChild(ul);
  }

  function render_triage(c) {
    var t = c.triage || {};
    var box = CD.clear($('#triage'));
    var conf = t.confidence != null ? Math.round(t.confidence * 100) : null;
    box.appendChild(h('dl', { class: 'kv' }, [
      h('dt', { text: 'Intent' }), h('dd', { text: t.intent ? CD.humanize(t.intent) : 'Unknown' }),
      h('dt', { text: 'Confidence' }), h('dd', null, [conf == null ? '–' : conf + '%',
        conf == null ? null : h('div', { class: 'bar-conf', 'aria-hidden': 'true' }, [h('span', { style: 'width:' + conf + '%' })])]),
      t.reason || t.action ? h('dt', { text: 'Handed off' }) : null,
      t.reason || t.action ? h('dd', { text: t.reason || t.action }) : null
    ]));
    var arts = t.articles || [];
    box.appendChild(h('h3', { text: 'Articles the bot offered', style: 'margin-top:14px' }));
    if (!arts.length) box.appendChild(h('p', { class: 'small muted', text: 'None.' }));
    else box.appendChild(h('ul', { class: 'earlier' }, arts.map(function (a) {
      return h('li', null, [h('a', { href: a.url || '/kb/' + encodeURIComponent(a.id), target: '_blank', rel: 'noopener', text: art_title(a) }),
        a.score != null ? h('span', { class: 'small muted', text: ' score ' + (+a.score).toFixed(2) }) : null]);
    })));
  }

  function render_typing() {
    var c = chats[active];
    $('#typing').textContent = c && c.typing_until > Date.now() ? cust_name(c) + ' is typing…' : '';
  }

  function show_history(id) {
    var dlg = $('#history');
    var ol = CD.clear($('#history-body'));
    ol.appendChild(h('li', { class: 'system' }, [h('div', { class: 'msg', text: 'Loading…' })]));
    if (dlg.showModal) dlg.showModal(); else dlg.setAttribute('open', '');
    CD.api('/api/conversations/' + encodeURIComponent(id)).then(function (conv) {
      CD.clear(ol);
      var msgs = conv.messages || conv.transcript || [];
      if (!msgs.length) ol.appendChild(h('li', { class: 'system' }, [h('div', { class: 'msg', text: 'No messages.' })]));
      msgs.forEach(function (m) { ol.appendChild(item_el(normalize(m))); });
    }, function (e) {
      CD.clear(ol);
      ol.appendChild(h('li', { class: 'system' }, [h('div', { class: 'msg', text: 'Could not load: ' + e.message })]));
    });
  }
  $('#history-close').addEventListener('click', function () { $('#history').close(); });

  /* ---------- replying ---------- */
  var last_typing = 0;
  $('#reply-text').addEventListener('input', function () {
    var c = chats[active];
    if (!c) return;
    c.draft = this.value;
    if (Date.now() - last_typing > 3000 && this.value.trim()) {
      last_typing = Date.now();
      send({ type: 'typing', conversation: active });
    }
  });
  $('#reply-text').addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('#reply').requestSubmit();
    }
  });
  $('#reply').addEventListener('submit', function (e) {
    e.preventDefault();
    var c = chats[active];
    var ta = $('#reply-text');
    var text = ta.value.trim();
    if (!c || !text) return;
    var id = 'a' + Date.now().toString(36) + (msg_n++);
    if (!send({ type: 'message', conversation: c.id, id: id, text: text })) return;
    var it = { id: id, from: 'agent', agent: me.name, text: text, at: Date.now() / 1000, pending: true };
    c.items.push(it);
    append_item(it);
    ta.value = '';
    c.draft = '';
    render_mine();
  });

  /* ---------- escalation status update ---------- */
  function status_card(su) {
    var rows = [['Tracking id', su.tracking_id || '(new)'], ['Status', su.status], ['Owner', su.owner],
      ['Next update', su.next_update + (su.time_zone ? ' (' + su.time_zone + ')' : '')], ['Workaround', su.workaround]];
    var dl = h('dl', { class: 'kv' });
    rows.forEach(function (r) {
      if (!r[1]) return;
      dl.appendChild(h('dt', { text: r[0] }));
      dl.appendChild(h('dd', { text: r[1] }));
    });
    return h('div', { class: 'msg status-card', role: 'group', 'aria-label': 'Status update ' + (su.tracking_id || '') },
      [h('strong', { text: 'Status update' }), dl]);
  }
  /* The offset from UTC, in minutes, of time zone tz at the local time "YYYY-MM-DDTHH:MM". */
  function zone_offset(tz, local) {
    var guess = Date.parse(local + 'Z');
    var p = {};
    new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit',
      day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(new Date(guess))
      .forEach(function (x) { p[x.type] = x.value; });
    return Math.round((Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute) - guess) / 60000);
  }
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  /* A dialog's form: Cancel closes the dialog; Submit calls submit(chat) for the open chat. */
  function modal_form(dialog, cancel, form, submit) {
    $(cancel).addEventListener('click', function () { $(dialog).close(); });
    $(form).addEventListener('submit', function (e) {
      e.preventDefault();
      var c = chats[active];
      if (!c) { $(dialog).close(); return; }
      submit(c);
    });
  }
  function show_error(sel, message) {
    $(sel).textContent = message;
    $(sel).hidden = false;
  }

  $('#status-open').addEventListener('click', function () {
    if (!chats[active] || chats[active].closed) return;
    $('#status-error').hidden = true;
    if (!$('#su-tz').value) $('#su-tz').value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    if (!$('#su-next').value) {
      var d = new Date(Date.now() + 24 * 3600 * 1000);
      $('#su-next').value = d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + 'T' +
        pad2(d.getHours()) + ':00';
    }
    $('#status-dialog').showModal();
  });
  modal_form('#status-dialog', '#status-cancel', '#status-form', function (c) {
    var tz = $('#su-tz').value.trim(), local = $('#su-next').value, off;
    try { off = zone_offset(tz, local); } catch (err) { off = null; }
    if (off == null || !isFinite(off)) {
      show_error('#status-error', 'Unknown time zone: use a name such as Europe/Madrid or UTC.');
      return;
    }
    var sign = off < 0 ? '-' : '+', a = Math.abs(off);
    var su = {
      tracking_id: $('#su-tracking').value.trim().toUpperCase(), owner: $('#su-owner').value.trim(),
      status: $('#su-status').value.trim(), next_update: local + sign + pad2(Math.floor(a / 60)) + ':' + pad2(a % 60),
      time_zone: tz, workaround: $('#su-workaround').value.trim()
    };
    var id = 's' + Date.now().toString(36) + (msg_n++);
    var f = { type: 'status_update', conversation: c.id, id: id, owner: su.owner, status: su.status,
      next_update: su.next_update, time_zone: su.time_zone, workaround: su.workaround };
    if (su.tracking_id) f.tracking_id = su.tracking_id;
    if (!send(f)) return;
    var it = { id: id, from: 'agent', agent: me.name, text: 'Status update', at: Date.now() / 1000, pending: true,
      status_update: su };
    c.items.push(it);
    append_item(it);
    $('#status-dialog').close();
    $('#su-status').value = '';
    $('#su-workaround').value = '';
  });

  /* ---------- transfer and close ---------- */
  function fill_queues(current) {
    var sel = $('#transfer-queue');
    CD.clear(sel);
    known_queues.forEach(function (q) {
      sel.appendChild(h('option', { value: q, text: CD.humanize(q), selected: q === current ? true : null }));
    });
  }
  var known_queues = DEFAULT_QUEUES.slice();
  function load_queues() {
    CD.api('/api/queues').then(function (r) {
      var qs = (r && (r.queues || r)) || [];
      qs = qs.map(function (q) { return typeof q === 'string' ? q : q.name || q.id; }).filter(Boolean);
      if (qs.length) known_queues = qs;
      if (active) fill_queues(chats[active] && chats[active].queue);
    }, function () { /* the default list stays */ });
  }
  $('#transfer').addEventListener('click', function () {
    var c = chats[active];
    if (!c) return;
    var q = $('#transfer-queue').value;
    if (send({ type: 'transfer', conversation: c.id, queue: q })) c.transferring = q;
  });

  var drivers = $('#drivers');
  DRIVERS.forEach(function (d) { drivers.appendChild(h('option', { value: d })); });
  $('#close-chat').addEventListener('click', function () {
    var c = chats[active];
    if (!c) return;
    $('#disposition').value = (c.triage && c.triage.intent) || '';
    $('#note').value = '';
    $('#wrapup-error').hidden = true;
    $('#wrapup').showModal();
    $('#disposition').focus();
  });
  modal_form('#wrapup', '#wrapup-cancel', '#wrapup-form', function (c) {
    var d = $('#disposition').value.trim();
    if (!d) {
      show_error('#wrapup-error', 'Choose the contact driver: what the customer contacted us about.');
      $('#disposition').focus();
      return;
    }
    var note = $('#note').value.trim();
    var f = { type: 'close', conversation: c.id, disposition: d };
    if (note) f.note = note;
    if (send(f)) {
      c.closing = true;
      $('#wrapup').close();
      CD.toast('Chat closed.');
      /* closed confirms it; if the customer had already closed, nothing more comes. */
      setTimeout(function () { if (chats[c.id] && chats[c.id].closing) drop_chat(c.id); }, 3000);
    }
  });

  function drop_chat(id) {
    if (!chats[id]) return;
    delete chats[id];
    order = order.filter(function (x) { return x !== id; });
    if (active === id) select(order[order.length - 1] || null);
    render_capacity();
    update_title();
  }

  /* ---------- canned replies from the KB ---------- */
  $('#canned-toggle').addEventListener('click', function () {
    var q = $('#kb-q');
    this.setAttribute('aria-expanded', 'true');
    var c = chats[active];
    if (!q.value && c) {
      var last = c.items.filter(function (x) { return x.from === 'customer'; }).slice(-1)[0];
      if (last) q.value = last.text.slice(0, 120);
    }
    $('#canned').scrollIntoView({ block: 'nearest' });
    q.focus();
    if (q.value) $('#kb-search').requestSubmit();
  });
  $('#kb-search').addEventListener('submit', function (e) {
    e.preventDefault();
    var q = $('#kb-q').value.trim();
    var ul = CD.clear($('#kb-results'));
    if (!q) return;
    var c = chats[active];
    var lang = c && c.customer && c.customer.lang ? '&lang=' + encodeURIComponent(c.customer.lang.slice(0, 2)) : '';
    ul.appendChild(h('li', { class: 'muted small', text: 'Searching…' }));
    CD.api('/api/search?q=' + encodeURIComponent(q) + lang).then(function (r) {
      CD.clear(ul);
      var hits = (r && (r.hits || r.results || r.articles)) || (Array.isArray(r) ? r : []);
      if (!hits.length) { ul.appendChild(h('li', { class: 'muted small', text: 'No article matches.' })); return; }
      hits.slice(0, 6).forEach(function (hit) {
        var url = hit.url || '/kb/' + encodeURIComponent(hit.id);
        var abs = /^https?:/.test(url) ? url : location.origin + url;
        ul.appendChild(h('li', null, [
          h('div', { class: 'title', text: hit.title || hit.id }),
          h('p', { class: 'passage', text: String(hit.passage || '').replace(/\*\*|__|`/g, '').replace(/^#+\s*/gm, '') }),
          h('div', { class: 'row' }, [
            h('button', { class: 'btn small', type: 'button', onclick: function () { insert(hit.passage || ''); } }, ['Insert passage']),
            h('button', { class: 'btn small', type: 'button', onclick: function () { insert((hit.title || 'This article') + ': ' + abs); } }, ['Insert link'])
          ])
        ]));
      });
    }, function (err) {
      CD.clear(ul);
      ul.appendChild(h('li', { class: 'notice bad', text: 'Search failed: ' + err.message }));
    });
  });
  function insert(text) {
    var ta = $('#reply-text');
    if (!active) { CD.toast('Open a chat first.', true); return; }
    var s = ta.selectionStart, e2 = ta.selectionEnd, v = ta.value;
    var pre = v.slice(0, s);
    var sep = pre && !/\s$/.test(pre) ? (pre.length ? '\n' : '') : '';
    ta.value = pre + sep + text + v.slice(e2);
    ta.focus();
    var pos = (pre + sep + text).length;
    ta.setSelectionRange(pos, pos);
    if (chats[active]) chats[active].draft = ta.value;
  }

  /* ---------- availability, sound, title ---------- */
  $('#available').addEventListener('change', function () {
    $('#available-label').textContent = this.checked ? 'Available for new chats' : 'Away: no new chats';
    send({ type: 'status', available: this.checked });
  });
  try { $('#sound').checked = localStorage.getItem('caredesk.sound') === '1'; } catch (e) { /* ignore */ }
  $('#sound').addEventListener('change', function () {
    try { localStorage.setItem('caredesk.sound', this.checked ? '1' : '0'); } catch (e) { /* ignore */ }
    if (this.checked) beep();
  });
  var audio_ctx = null;
  function beep() {
    try {
      audio_ctx = audio_ctx || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio_ctx.createOscillator(), g = audio_ctx.createGain();
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.0001, audio_ctx.currentTime);
      g.gain.exponentialRampToValueAtTime(0.2, audio_ctx.currentTime + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, audio_ctx.currentTime + 0.35);
      o.connect(g); g.connect(audio_ctx.destination);
      o.start(); o.stop(audio_ctx.currentTime + 0.4);
    } catch (e) { /* no audio: the title badge still shows */ }
  }
  function notify() {
    if ($('#sound').checked) beep();
    update_title();
  }
  function update_title() {
    var unread = order.reduce(function (n, id) { return n + (chats[id].unread || 0); }, 0);
    var n = queue_items.length + unread;
    document.title = (n ? '(' + n + ') ' : '') + 'Agent console · caredesk';
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && active && chats[active] && chats[active].unread) select(active);
  });

  /* ---------- start ---------- */
  CD.require_signin({
    role: 'agent',
    verify: function (tok) {
      if (ws) { signed_in = false; try { ws.close(); } catch (e) { /* ignore */ } }
      return connect(tok);
    },
    onready: function () {
      render_mine();
      render_queue([]);
      load_queues();
    },
    onsignout: function () {
      signed_in = false;
      clearTimeout(retry_timer);
      if (ws) ws.close(1000);
      chats = {};
      order = [];
      active = null;
      set_conn('offline', 'Offline');
    }
  });
  window.__agent = { chats: function () { return chats; }, queue: function () { return queue_items; } };
})();
