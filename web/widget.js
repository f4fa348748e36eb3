/* caredesk widget: the customer chat launcher and panel, embedded with one tag:
 *   <script src="https://HOST/widget.js" data-caredesk="wss://HOST/chat" async></script>
 * Options (attributes on the script tag): data-caredesk (websocket URL; default
 * ws(s)://the script's host/chat), data-title, data-color (any CSS colour),
 * data-subtitle, data-open ("true" opens the panel on load), data-position
 * ("left" or "right").
 *
 * DESIGN. Plain browser JavaScript with no dependency and no build step. The UI
 * lives in an open Shadow DOM so the host page's CSS cannot reach it and ours
 * cannot leak out. The socket opens only when the customer opens the panel or
 * a stored conversation exists, so the host page pays nothing until then. The
 * conversation token, the last sequence number seen and a short transcript are
 * kept in localStorage; a reconnect (or a reload) sends hello with the token
 * and last_seq, and the server replays what was missed. Every text from the
 * network is inserted with textContent, never as HTML. */
(function () {
  'use strict';
  if (window.__caredesk) return;
  var script = document.currentScript ||
    document.querySelector('script[data-caredesk]') ||
    document.querySelector('script[src*="widget.js"]');
  var attr = function (n, d) {
    var v = script && script.getAttribute('data-' + n);
    return v == null || v === '' ? d : v;
  };

  function derive_ws_url() {
    var base = script && script.src ? new URL(script.src, location.href) : location;
    var proto = base.protocol === 'https:' ? 'wss:' : 'ws:';
    return proto + '//' + base.host + '/chat';
  }

  var cfg = {
    url: attr('caredesk', '') || derive_ws_url(),
    title: attr('title', 'Help'),
    subtitle: attr('subtitle', 'Instant answers, or a real person'),
    color: attr('color', '#2453c7'),
    position: attr('position', 'right') === 'left' ? 'left' : 'right',
    open: attr('open', '') === 'true'
  };
  var store_key = 'caredesk:' + cfg.url;
  /* Article links in replies are relative ("/kb/ID") to the caredesk server,
   * which may not be the host page's server. */
  var server_origin = (function () {
    try { return new URL(cfg.url.replace(/^ws/, 'http')).origin; } catch (e) { return location.origin; }
  })();
  function article_href(a) {
    var u = a.url || ('/kb/' + encodeURIComponent(a.id));
    try {
      var abs = new URL(u, server_origin);
      return /^https?:$/.test(abs.protocol) ? abs.href : '#';
    } catch (e) { return '#'; }
  }
  var MAX_ITEMS = 120;
  var TYPING_SHOW_MS = 5000;

  /* ---------- colour: pick readable text for the theme colour ---------- */
  function parse_color(c) {
    var el = document.createElement('span');
    el.style.color = c;
    el.style.display = 'none';
    document.documentElement.appendChild(el);
    var m = getComputedStyle(el).color.match(/\d+(\.\d+)?/g);
    el.remove();
    return m ? [+m[0], +m[1], +m[2]] : [36, 83, 199];
  }
  function luminance(rgb) {
    var a = rgb.map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
  }
  function contrast(l1, l2) {
    return (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  }
  /* Darkens the colour until white text on it reaches 4.5:1, if the theme
   * colour is light enough that near-black text would not do either. */
  function theme_colors(c) {
    var rgb = parse_color(c);
    var l = luminance(rgb);
    if (contrast(l, 1) >= 4.5) return { bg: 'rgb(' + rgb + ')', fg: '#ffffff' };
    if (contrast(l, luminance([17, 17, 17])) >= 4.5)
      return { bg: 'rgb(' + rgb + ')', fg: '#111111' };
    while (contrast(luminance(rgb), 1) < 4.5)
      rgb = rgb.map(function (v) { return Math.floor(v * 0.9); });
    return { bg: 'rgb(' + rgb + ')', fg: '#ffffff' };
  }

  /* ---------- persistence ---------- */
  function load_state() {
    try {
      var s = JSON.parse(localStorage.getItem(store_key) || 'null');
      if (s && typeof s === 'object') return s;
    } catch (e) { /* private mode or bad JSON: start fresh */ }
    return {};
  }
  var st = load_state();
  st.items = Array.isArray(st.items) ? st.items : [];
  st.last_seq = st.last_seq | 0;
  function save_state() {
    try {
      st.items = st.items.slice(-MAX_ITEMS);
      localStorage.setItem(store_key, JSON.stringify(st));
    } catch (e) { /* storage full or blocked: the chat still works */ }
  }

  /* ---------- DOM helpers ---------- */
  function h(tag, props, kids) {
    var el = document.createElement(tag);
    if (props) for (var k in props) {
      var v = props[k];
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach(function (c) {
      if (c != null) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return el;
  }
  function svg(path, size) {
    var ns = 'http://www.w3.org/2000/svg';
    var s = document.createElementNS(ns, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('width', size || 24);
    s.setAttribute('height', size || 24);
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    var p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    p.setAttribute('fill', 'currentColor');
    s.appendChild(p);
    return s;
  }
  var ICON_CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h2v-2H7zm4 0v2h2v-2h-2zm4 0v2h2v-2h-2z';
  var ICON_CLOSE = 'M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z';
  var ICON_SEND = 'M3 20.5 21 12 3 3.5v6.6L15 12 3 13.9z';

  /* A small, safe Markdown subset for bot and agent text: paragraphs, "- "
   * lists, **bold**, and [links](http...). Built from DOM nodes only. */
  function inline(text, parent) {
    var re = /\*\*([^*]+)\*\*|\[([^\]]+)\]\(((?:https?:\/\/|\/)[^\s)]+)\)|(https?:\/\/[^\s<]+[^\s<.,;:!?)])/g;
    var last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1]) parent.appendChild(h('strong', { text: m[1] }));
      else {
        var href = m[3] || m[4];
        parent.appendChild(h('a', { href: href, target: '_blank', rel: 'noopener', text: m[2] || href }));
      }
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }
  function rich(text) {
    var box = h('div', { class: 'rich' });
    String(text || '').replace(/\r/g, '').split(/\n{2,}/).forEach(function (block) {
      var lines = block.split('\n');
      var is_list = lines.every(function (l) { return /^\s*([-*]|\d+\.)\s+/.test(l); });
      if (is_list) {
        var ordered = /^\s*\d+\./.test(lines[0]);
        var list = h(ordered ? 'ol' : 'ul');
        lines.forEach(function (l) {
          list.appendChild(inline(l.replace(/^\s*([-*]|\d+\.)\s+/, ''), h('li')));
        });
        box.appendChild(list);
      } else {
        var p = h('p');
        lines.forEach(function (l, i) {
          if (i) p.appendChild(h('br'));
          inline(l.replace(/^#+\s*/, ''), p);
        });
        box.appendChild(p);
      }
    });
    return box;
  }

  function fmt_wait(s) {
    s = Math.max(0, Math.round(+s || 0));
    if (s < 60) return 'under a minute';
    var m = Math.round(s / 60);
    if (m < 60) return 'about ' + m + ' minute' + (m === 1 ? '' : 's');
    var hrs = Math.round(m / 60);
    return 'about ' + hrs + ' hour' + (hrs === 1 ? '' : 's');
  }
  function ordinal(n) {
    var s = ['th', 'st', 'nd', 'rd'], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  /* ---------- styles ---------- */
  var theme = theme_colors(cfg.color);
  var CSS = [
    ':host{all:initial;--cd-accent:' + theme.bg + ';--cd-on-accent:' + theme.fg + ';',
    '--cd-text:#1b1f24;--cd-muted:#555e69;--cd-line:#d5dae1;--cd-bg:#fff;--cd-soft:#f3f5f8;',
    '--cd-bot:#eef1f6;--cd-ok:#16794a;--cd-warn:#8a5a00;--cd-bad:#b42318;',
    'font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;',
    'color:var(--cd-text)}',
    '*{box-sizing:border-box}',
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}',
    'button,textarea,input{font:inherit;color:inherit}',
    ':focus-visible{outline:3px solid #1a73e8;outline-offset:2px}',
    '.launcher{position:fixed;bottom:20px;' + cfg.position + ':20px;z-index:2147483000;',
    'width:60px;height:60px;border-radius:50%;border:0;cursor:pointer;',
    'background:var(--cd-accent);color:var(--cd-on-accent);display:grid;place-items:center;',
    'box-shadow:0 6px 20px rgba(16,24,40,.28)}',
    '.launcher:hover{filter:brightness(1.08)}',
    '.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;',
    'border-radius:10px;background:#b42318;color:#fff;font-size:12px;font-weight:700;line-height:20px}',
    '.panel{position:fixed;bottom:92px;' + cfg.position + ':20px;z-index:2147483000;width:380px;',
    'max-width:calc(100vw - 24px);height:600px;max-height:calc(100vh - 112px);display:flex;',
    'flex-direction:column;background:var(--cd-bg);border-radius:16px;overflow:hidden;',
    'box-shadow:0 12px 48px rgba(16,24,40,.3);border:1px solid var(--cd-line)}',
    '.panel[hidden]{display:none}',
    'header{background:var(--cd-accent);color:var(--cd-on-accent);padding:14px 12px 12px 16px;',
    'display:flex;gap:8px;align-items:flex-start}',
    'header .who{flex:1;min-width:0}',
    'h2{margin:0;font-size:17px;font-weight:650;line-height:1.3}',
    '.sub{margin:2px 0 0;font-size:13px;opacity:.95}',
    '.conn{display:inline-flex;align-items:center;gap:6px;margin-top:6px;font-size:12px;',
    'background:rgba(255,255,255,.92);color:#1b1f24;border-radius:10px;padding:1px 8px}',
    '.conn i{width:8px;height:8px;border-radius:50%;background:#8a94a3;display:inline-block}',
    '.conn[data-s=online] i{background:var(--cd-ok)}',
    '.conn[data-s=connecting] i{background:#c98a00}',
    '.conn[data-s=offline] i{background:var(--cd-bad)}',
    '.icon{border:0;background:transparent;color:inherit;width:40px;height:40px;border-radius:8px;',
    'display:grid;place-items:center;cursor:pointer;flex:none}',
    '.icon:hover{background:rgba(0,0,0,.12)}',
    '.banner{padding:10px 16px;background:#fff7e0;color:#5c3d00;border-bottom:1px solid #f1dfae;font-size:14px}',
    '.banner strong{font-weight:650}',
    '.banner[hidden]{display:none}',
    '.banner .email{margin-top:8px}.banner input{flex:1;min-width:0;border:1px solid #8a94a3;border-radius:8px;padding:6px 8px;background:#fff}',
    '.log{flex:1;overflow-y:auto;margin:0;padding:16px 14px 8px;list-style:none;background:var(--cd-soft)}',
    '.log>li{margin:0 0 10px;display:flex;flex-direction:column;align-items:flex-start}',
    '.log>li.me{align-items:flex-end}',
    '.bubble{max-width:86%;padding:9px 12px;border-radius:14px;background:#fff;',
    'border:1px solid var(--cd-line);word-wrap:break-word;overflow-wrap:anywhere}',
    '.me .bubble{background:var(--cd-accent);color:var(--cd-on-accent);border-color:transparent;',
    'border-bottom-right-radius:4px;white-space:pre-wrap}',
    '.bot .bubble,.agent .bubble{border-bottom-left-radius:4px}',
    '.meta{font-size:12px;color:var(--cd-muted);margin:0 4px 3px}',
    '.me .meta{margin-top:3px}',
    '.rich p{margin:0 0 6px}.rich p:last-child{margin:0}',
    '.rich ul,.rich ol{margin:4px 0 6px;padding-left:20px}',
    '.bubble a{color:#1946b8;font-weight:550}',
    '.me .bubble a{color:inherit}',
    '.sources{margin:8px 0 0;padding:8px 0 0;border-top:1px solid var(--cd-line);font-size:13px}',
    '.sources p{margin:0 0 2px;color:var(--cd-muted)}',
    '.sources ul{margin:0;padding:0;list-style:none}',
    '.sources li{margin:2px 0}',
    '.choices,.fb,.row{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px;align-items:center}',
    '.fb{font-size:13px;color:var(--cd-muted)}',
    '.chip{border:1px solid var(--cd-accent);color:#1b1f24;background:#fff;border-radius:16px;',
    'padding:5px 12px;cursor:pointer;font-size:14px;min-height:32px}',
    '.chip:hover{background:var(--cd-soft)}',
    '.chip[aria-pressed=true]{background:var(--cd-accent);color:var(--cd-on-accent)}',
    '.chip:disabled{cursor:default;opacity:.75}',
    '.ended .choices,.ended .fb button{display:none}',
    '.event{align-self:center;align-items:center!important}',
    '.event p{margin:0;font-size:13px;color:var(--cd-muted);text-align:center;',
    'background:#fff;border:1px solid var(--cd-line);border-radius:12px;padding:4px 12px}',
    '.typing{padding:0 16px 6px;font-size:13px;color:var(--cd-muted);background:var(--cd-soft);min-height:0}',
    '.typing[hidden]{display:none}',
    '.dots span{display:inline-block;width:6px;height:6px;margin:0 1px;border-radius:50%;',
    'background:var(--cd-muted);animation:cdb 1.2s infinite}',
    '.dots span:nth-child(2){animation-delay:.2s}.dots span:nth-child(3){animation-delay:.4s}',
    '@keyframes cdb{0%,80%,100%{opacity:.3}40%{opacity:1}}',
    '.bar{display:flex;gap:8px;padding:8px 12px 0;background:#fff;border-top:1px solid var(--cd-line)}',
    '.bar[hidden]{display:none}',
    '.ghost{border:1px solid var(--cd-line);background:#fff;border-radius:8px;padding:6px 10px;',
    'cursor:pointer;font-size:14px;min-height:36px;color:#1b1f24}',
    '.ghost:hover{background:var(--cd-soft)}',
    '.composer{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 12px;background:#fff}',
    '.composer[hidden]{display:none}',
    'textarea{flex:1;resize:none;border:1px solid #8a94a3;border-radius:10px;padding:9px 11px;',
    'min-height:42px;max-height:120px;line-height:1.4;background:#fff}',
    '.send{width:44px;height:42px;border-radius:10px;border:0;background:var(--cd-accent);',
    'color:var(--cd-on-accent);display:grid;place-items:center;cursor:pointer;flex:none}',
    '.send:disabled{opacity:.55;cursor:default}',
    '.rating{padding:14px 16px 16px;background:#fff;border-top:1px solid var(--cd-line)}',
    '.rating[hidden]{display:none}',
    '.rating fieldset{border:0;margin:0;padding:0}',
    '.rating legend{font-weight:650;margin-bottom:6px;padding:0}',
    '.stars{display:flex;gap:6px}',
    '.stars label{position:relative}',
    '.stars input{position:absolute;opacity:0;width:1px;height:1px}',
    '.stars span{display:grid;place-items:center;width:44px;height:44px;border-radius:10px;',
    'border:1px solid #8a94a3;cursor:pointer;font-weight:650;background:#fff}',
    '.stars input:checked+span{background:var(--cd-accent);color:var(--cd-on-accent);border-color:transparent}',
    '.stars input:focus-visible+span{outline:3px solid #1a73e8;outline-offset:2px}',
    '.scale{display:flex;justify-content:space-between;width:244px;font-size:12px;color:var(--cd-muted);margin-top:4px}',
    '.rating textarea{width:100%;margin-top:4px;min-height:44px}',
    '.rating label.c{display:block;margin-top:8px;font-size:14px}',
    '.primary{margin-top:10px;border:0;border-radius:10px;padding:9px 16px;cursor:pointer;',
    'background:var(--cd-accent);color:var(--cd-on-accent);font-weight:600;min-height:40px}',
    '.note{margin:8px 0 0;font-size:14px}',
    '.err{color:var(--cd-bad)}',
    '@media (max-width:480px){.panel{left:0;right:0;bottom:0;top:0;width:100%;max-width:none;',
    'height:100%;max-height:none;border-radius:0;border:0}',
    '.launcher{bottom:16px;' + cfg.position + ':16px}}',
    '@media (prefers-reduced-motion:reduce){.dots span{animation:none}}'
  ].join('');

  /* ---------- build the UI ---------- */
  var host = h('div', { id: 'caredesk-widget' });
  var root = host.attachShadow({ mode: 'open' });
  root.appendChild(h('style', { text: CSS }));

  var badge = h('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
  var launcher = h('button', {
    class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'cd-panel',
    'aria-label': 'Open chat: ' + cfg.title
  }, [svg(ICON_CHAT, 28), badge]);

  var conn_el = h('span', { class: 'conn', 'data-s': 'idle' }, [h('i'), h('span', { text: 'Not connected' })]);
  var sub_el = h('p', { class: 'sub', text: cfg.subtitle });
  var close_btn = h('button', { class: 'icon', type: 'button', 'aria-label': 'Close chat' }, [svg(ICON_CLOSE, 20)]);
  var banner = h('div', { class: 'banner', role: 'status', hidden: true });
  var log = h('ol', { class: 'log', 'aria-label': 'Conversation', tabindex: '0' });
  var live = h('div', { class: 'sr', 'aria-live': 'polite', 'aria-atomic': 'false' });
  var typing_el = h('div', { class: 'typing', hidden: true }, [
    h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('span'), h('span'), h('span')]),
    h('span', { class: 'tt' })
  ]);
  var handoff_btn = h('button', { class: 'ghost', type: 'button', text: 'Talk to a person' });
  var bar = h('div', { class: 'bar' }, [handoff_btn]);
  var input = h('textarea', {
    id: 'cd-input', rows: '1', placeholder: 'Ask a question…', maxlength: '4000',
    'aria-describedby': 'cd-hint', autocomplete: 'off'
  });
  var send_btn = h('button', { class: 'send', type: 'submit', 'aria-label': 'Send message' }, [svg(ICON_SEND, 20)]);
  var composer = h('form', { class: 'composer' }, [
    h('label', { class: 'sr', for: 'cd-input', text: 'Your message' }),
    h('span', { class: 'sr', id: 'cd-hint', text: 'Press Enter to send, Shift+Enter for a new line.' }),
    input, send_btn
  ]);
  var rating = build_rating();
  var panel = h('section', {
    id: 'cd-panel', class: 'panel', role: 'dialog', 'aria-labelledby': 'cd-title', hidden: true
  }, [
    h('header', null, [
      h('div', { class: 'who' }, [h('h2', { id: 'cd-title', text: cfg.title }), sub_el, conn_el]),
      close_btn
    ]),
    banner, log, typing_el, bar, composer, rating, live
  ]);
  root.appendChild(launcher);
  root.appendChild(panel);

  function build_rating() {
    var stars = h('div', { class: 'stars' });
    for (var i = 1; i <= 5; i++) {
      stars.appendChild(h('label', null, [
        h('input', { type: 'radio', name: 'score', value: String(i), 'aria-label': i + ' out of 5' }),
        h('span', { text: String(i), 'aria-hidden': 'true' })
      ]));
    }
    var form = h('form', { class: 'rating', hidden: true, 'aria-labelledby': 'cd-rate-q' }, [
      h('fieldset', null, [
        h('legend', { id: 'cd-rate-q', text: 'How did we do?' }),
        stars,
        h('div', { class: 'scale', 'aria-hidden': 'true' }, [h('span', { text: 'Poor' }), h('span', { text: 'Excellent' })])
      ]),
      h('label', { class: 'c', for: 'cd-comment', text: 'Anything to add? (optional)' }),
      h('textarea', { id: 'cd-comment', name: 'comment', maxlength: '1000', rows: '2' }),
      h('p', { class: 'note err', role: 'alert', hidden: true }),
      h('button', { class: 'primary', type: 'submit', text: 'Send rating' })
    ]);
    return form;
  }

  /* ---------- rendering of conversation items ---------- */
  var items_by_id = {};
  function agent_label() { return st.agent || 'Support'; }

  function render_item(it) {
    var li;
    if (it.kind === 'me') {
      li = h('li', { class: 'me' }, [
        h('span', { class: 'sr', text: 'You said:' }),
        h('div', { class: 'bubble', text: it.text }),
        h('span', { class: 'meta', text: it.status === 'sending' ? 'Sending…' : it.status === 'failed' ? 'Not sent yet: will retry' : '' })
      ]);
    } else if (it.kind === 'bot' || it.kind === 'agent') {
      var who = it.kind === 'bot' ? cfg.title + ' assistant' : (it.agent || agent_label());
      var bubble = h('div', { class: 'bubble' }, [rich(it.text)]);
      if (it.articles && it.articles.length) {
        var ul = h('ul');
        it.articles.slice(0, 3).forEach(function (a) {
          ul.appendChild(h('li', null, [h('a', {
            href: article_href(a), target: '_blank', rel: 'noopener',
            class: 'article', text: a.title || a.id
          })]));
        });
        bubble.appendChild(h('div', { class: 'sources' }, [h('p', { text: 'From our help centre:' }), ul]));
      }
      if (it.choices && it.choices.length) {
        var box = h('div', { class: 'choices', role: 'group', 'aria-label': 'Suggested topics' });
        it.choices.forEach(function (c) {
          var label = choice_label(c);
          box.appendChild(h('button', {
            class: 'chip', type: 'button', text: label, disabled: it.chosen ? true : null,
            'aria-pressed': it.chosen === label ? 'true' : null,
            onclick: function () { pick_choice(it, c); }
          }));
        });
        bubble.appendChild(box);
      }
      if (it.kind === 'bot' && it.action === 'answer' && it.seq) {
        var fb = h('div', { class: 'fb', role: 'group', 'aria-label': 'Was this helpful?' });
        if (it.helpful == null) {
          fb.appendChild(h('span', { text: 'Was this helpful?' }));
          fb.appendChild(h('button', { class: 'chip', type: 'button', text: 'Yes', onclick: function () { give_feedback(it, true); } }));
          fb.appendChild(h('button', { class: 'chip', type: 'button', text: 'No', onclick: function () { give_feedback(it, false); } }));
        } else {
          fb.appendChild(h('span', { text: it.helpful ? 'Thanks, glad it helped.' : 'Thanks for telling us.' }));
        }
        bubble.appendChild(fb);
      }
      li = h('li', { class: it.kind }, [h('span', { class: 'meta', text: who }), bubble]);
    } else {
      li = h('li', { class: 'event' }, [h('p', { text: it.text })]);
    }
    return li;
  }

  function choice_label(c) {
    if (typeof c === 'string') return c;
    return c.label || c.title || c.text || c.intent || c.id || '';
  }

  function redraw_item(it) {
    var old = items_by_id[it.key];
    var li = render_item(it);
    items_by_id[it.key] = li;
    if (old && old.parentNode) old.parentNode.replaceChild(li, old);
    else log.appendChild(li);
    return li;
  }

  var key_counter = 0;
  /* Adds one item to the transcript; announce: also read it to screen readers. */
  function add_item(it, announce) {
    if (it.seq && st.items.some(function (x) { return x.seq === it.seq && x.kind === it.kind; })) return;
    var prev = st.items[st.items.length - 1];
    if (it.kind === 'event' && !it.seq && prev && prev.kind === 'event' && prev.text === it.text) return;
    it.key = it.key || ('k' + Date.now().toString(36) + (key_counter++));
    st.items.push(it);
    redraw_item(it);
    if (announce && it.kind !== 'me') {
      var who = it.kind === 'bot' ? 'Assistant' : it.kind === 'agent' ? (it.agent || agent_label()) : '';
      live.textContent = (who ? who + ': ' : '') + it.text;
    }
    if (it.kind !== 'me' && (panel.hidden || document.hidden) && announce) bump_unread();
    scroll_down();
    save_state();
  }
  function update_item(it) {
    redraw_item(it);
    save_state();
  }
  function scroll_down() {
    log.scrollTop = log.scrollHeight;
  }
  var unread = 0;
  function bump_unread() {
    if (!panel.hidden) return;
    unread++;
    badge.textContent = String(unread);
    badge.hidden = false;
    launcher.setAttribute('aria-label', 'Open chat: ' + cfg.title + ' (' + unread + ' new)');
  }

  /* ---------- state display ---------- */
  function show_banner(node_or_text) {
    banner.textContent = '';
    if (!node_or_text) { banner.hidden = true; return; }
    if (typeof node_or_text === 'string') banner.textContent = node_or_text;
    else banner.appendChild(node_or_text);
    banner.hidden = false;
  }
  function apply_state() {
    var s = st.state || 'bot';
    var closed = s === 'closed' || s === 'rated';
    log.classList.toggle('ended', closed);
    if (closed) hide_typing();
    bar.hidden = closed || s === 'queued' || s === 'agent' || s === 'with_agent' || s === 'offline';
    composer.hidden = closed;
    rating.hidden = s !== 'closed' || !!st.rated;
    if (s === 'queued' || s === 'offline') {
      var q = st.queue || {};
      var key = JSON.stringify([s, q, st.email || '']);
      if (banner.dataset.key !== key || banner.hidden) {
        banner.dataset.key = key;
        var frag = h('div');
        if (q.offline || s === 'offline') {
          frag.appendChild(h('strong', { text: 'Our team is away right now. ' }));
          frag.appendChild(document.createTextNode(offline_text()));
          if (q.ask_email) frag.appendChild(email_form());
          else if (st.email) frag.appendChild(h('p', { class: 'note', text: 'We will reply to ' + st.email + '.' }));
        } else if (q.position) {
          frag.appendChild(h('strong', { text: 'You are ' + ordinal(q.position) + ' in the queue. ' }));
          frag.appendChild(document.createTextNode(wait_text()));
        } else {
          frag.appendChild(h('strong', { text: 'Connecting you to a person… ' }));
        }
        show_banner(frag);
      }
      sub_el.textContent = q.offline ? 'Leave a message: we will get back to you' : 'Waiting for the next available person';
    } else if (s === 'agent' || s === 'with_agent') {
      show_banner(null);
      sub_el.textContent = 'You are chatting with ' + agent_label();
    } else if (closed) {
      show_banner(null);
      sub_el.textContent = 'This conversation has ended';
      input.blur();
    } else {
      show_banner(null);
      sub_el.textContent = cfg.subtitle;
    }
    if (closed && st.rated && !root.querySelector('.restart')) {
      panel.insertBefore(h('div', { class: 'bar restart' }, [h('button', {
        class: 'ghost', type: 'button', text: 'Start a new conversation', onclick: restart
      })]), live);
    }
    if (!closed) {
      var r = root.querySelector('.restart');
      if (r) r.remove();
    }
    scroll_down();
  }
  function wait_text() {
    var q = st.queue || {};
    return q.estimated_wait_s == null ? 'Someone will be with you as soon as they are free.'
      : 'Expected wait: ' + fmt_wait(q.estimated_wait_s) + '.';
  }
  function offline_text() {
    var q = st.queue || {};
    var t = q.reply_by ? Date.parse(q.reply_by) : NaN;
    if (isFinite(t)) {
      return 'Leave your question here and we will reply by ' + new Date(t).toLocaleString([], {
        weekday: 'long', hour: '2-digit', minute: '2-digit' }) + '.';
    }
    return 'Leave your question here and we will reply as soon as we are back.';
  }
  function email_form() {
    var inp = h('input', { id: 'cd-email', type: 'email', autocomplete: 'email', required: true, placeholder: 'you@example.com' });
    var form = h('form', { class: 'row email' }, [
      h('label', { class: 'sr', for: 'cd-email', text: 'Your email address for our reply' }),
      inp, h('button', { class: 'ghost', type: 'submit', text: 'Save email' })
    ]);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var v = inp.value.trim();
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) { inp.focus(); return; }
      st.email = v;
      if (st.queue) st.queue.ask_email = false;
      send_frame({ type: 'contact', email: v });
      save_state();
      apply_state();
    });
    return form;
  }
  function set_state(s) {
    st.state = s;
    save_state();
    apply_state();
  }
  function set_conn(s, text) {
    conn_el.setAttribute('data-s', s);
    conn_el.lastChild.textContent = text;
  }

  /* ---------- socket ---------- */
  var ws = null;
  var attempts = 0;
  var retry_timer = 0;
  var countdown_timer = 0;
  var outbox = []; /* frames waiting for a connection */
  var ready = false;
  var wanted = false;

  /* The page's language as an ISO 639-1 code ("en-GB" -> "en"). */
  function page_lang() {
    var l = (document.documentElement.lang || navigator.language || 'en').toLowerCase();
    var m = l.match(/^[a-z]{2,3}/);
    return m ? m[0] : 'en';
  }

  function connect() {
    wanted = true;
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) return;
    clearTimeout(retry_timer);
    clearInterval(countdown_timer);
    set_conn('connecting', attempts ? 'Reconnecting…' : 'Connecting…');
    try {
      ws = new WebSocket(cfg.url);
    } catch (e) {
      schedule_retry();
      return;
    }
    var sock = ws;
    sock.onopen = function () {
      var hello = {
        type: 'hello',
        lang: page_lang(),
        page: location.href.slice(0, 1000)
      };
      if (st.token) {
        hello.token = st.token;
        hello.last_seq = st.last_seq | 0;
      }
      if (st.name) hello.name = st.name;
      if (st.email) hello.email = st.email;
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f.type === 'string') on_frame(f);
    };
    sock.onclose = function (ev) {
      if (sock !== ws) return;
      ready = false;
      ws = null;
      st.sent_unacked = pending_ids();
      if (ev.code === 1008 && st.token) {
        /* The server refused the stored conversation: start a new one. */
        forget_conversation();
      }
      if (wanted) schedule_retry();
      else set_conn('idle', 'Not connected');
    };
    sock.onerror = function () { /* onclose follows and retries */ };
  }

  /* Exponential backoff with full jitter: 0.5 s, 1 s, 2 s ... capped at 30 s. */
  function schedule_retry() {
    var cap = Math.min(30000, 500 * Math.pow(2, attempts));
    var delay = Math.max(400, Math.round(Math.random() * cap));
    attempts++;
    var until = Date.now() + delay;
    var tick = function () {
      var left = Math.ceil((until - Date.now()) / 1000);
      set_conn('offline', navigator.onLine === false ? 'Offline: waiting for the network'
        : (last_error ? 'Chat unavailable' : 'Connection lost') + ': retrying' + (left > 0 ? ' in ' + left + ' s' : '…'));
    };
    tick();
    clearInterval(countdown_timer);
    countdown_timer = setInterval(tick, 1000);
    retry_timer = setTimeout(function () {
      clearInterval(countdown_timer);
      connect();
    }, delay);
  }
  window.addEventListener('online', function () {
    if (wanted && !ws) { attempts = 0; clearTimeout(retry_timer); connect(); }
  });

  function send_frame(f) {
    if (ready && ws && ws.readyState === 1) {
      ws.send(JSON.stringify(f));
      return true;
    }
    outbox.push(f);
    if (!ws) connect();
    return false;
  }
  function pending_ids() {
    return st.items.filter(function (x) { return x.kind === 'me' && x.status === 'sending'; })
      .map(function (x) { return x.id; });
  }

  function on_frame(f) {
    switch (f.type) {
    case 'welcome': on_welcome(f); break;
    case 'reply': on_reply(f); break;
    case 'ack': on_ack(f); break;
    case 'queued': on_queued(f); break;
    case 'agent_joined':
      st.agent = f.agent && (f.agent.name || f.agent) || 'Support';
      if (typeof st.agent !== 'string') st.agent = 'Support';
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: st.agent + ' joined the chat' }, true);
      set_state('agent');
      break;
    case 'agent_message':
      seen(f.seq);
      hide_typing();
      add_item({ kind: 'agent', seq: f.seq, text: f.text, agent: f.agent || st.agent }, true);
      if (st.state !== 'agent') set_state('agent');
      break;
    case 'agent_left':
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: (f.agent || st.agent || 'The agent') + ' left the chat' }, true);
      break;
    case 'transferred':
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: 'We are passing you to a colleague who can help with this.' }, true);
      set_state('queued');
      break;
    case 'customer_message':
      on_replayed_message(f);
      break;
    case 'system':
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: f.text || CD_EVENTS[f.event] || '' }, false);
      break;
    case 'feedback_ok':
    case 'contact_ok':
      break;
    case 'rating_ok':
    case 'typing':
      if (f.from !== 'customer') show_typing(f.from);
      break;
    case 'closed':
      seen(f.seq);
      hide_typing();
      add_item({ kind: 'event', seq: f.seq, text: 'The conversation was closed' + (f.by === 'customer' ? '.' : ' by ' + (f.by === 'agent' ? agent_label() : 'us') + '.') }, true);
      set_state('closed');
      break;
    case 'rating_request':
      if (st.state !== 'rated') set_state('closed');
      break;
      st.rated = true;
      set_state('rated');
      break;
    case 'error': on_error(f); break;
    default: break;
    }
  }

  var CD_EVENTS = {
    transferred: 'We are passing you to a colleague who can help with this.',
    agent_left: 'The agent left the chat.',
    offline: 'Our team is away right now.'
  };

  function seen(seq) {
    if (typeof seq === 'number' && seq > st.last_seq) st.last_seq = seq;
  }

  function on_welcome(f) {
    var fresh = !st.token || (f.token && f.token !== st.token);
    if (fresh && st.token) {
      /* The server started a new conversation: drop the old transcript. */
      st.items = [];
      st.last_seq = 0;
      st.rated = false;
      st.agent = null;
      log.textContent = '';
      items_by_id = {};
    }
    st.token = f.token || st.token;
    st.conversation = f.conversation;
    if (f.state) st.state = norm_state(f.state);
    if (f.agent) st.agent = f.agent.name || f.agent;
    seen(f.seq);
    save_state();
    ready = true;
    attempts = 0;
    last_error = '';
    set_conn('online', 'Connected');
    apply_state();
    /* Re-send what was typed but never acknowledged, then the queued frames. */
    var unacked = st.items.filter(function (x) { return x.kind === 'me' && x.status === 'sending'; });
    var queued_ids = outbox.filter(function (o) { return o.type === 'message'; }).map(function (o) { return o.id; });
    unacked.forEach(function (x) {
      if (queued_ids.indexOf(x.id) >= 0) return;
      var f = { type: 'message', id: x.id, text: x.text };
      if (x.choice) f.choice = x.choice;
      outbox.unshift(f);
    });
    var q = outbox;
    outbox = [];
    q.forEach(send_frame);
  }

  function norm_state(s) {
    if (s === 'with_agent' || s === 'agent') return 'agent';
    if (s === 'clarifying' || s === 'collecting') return 'bot';
    return s;
  }

  function mark_mine(id, seq) {
    var mine = null;
    st.items.forEach(function (x) { if (x.kind === 'me' && x.id === id) mine = x; });
    if (mine) {
      mine.status = 'sent';
      if (seq && !mine.seq) mine.seq = seq;
      update_item(mine);
    }
    return mine;
  }

  function on_reply(f) {
    seen(f.seq);
    mark_mine(f.reply_to);
    hide_typing();
    add_item({
      kind: 'bot', seq: f.seq, text: f.text || '', action: f.action, intent: f.intent,
      articles: Array.isArray(f.articles) ? f.articles : [],
      choices: Array.isArray(f.choices) ? f.choices : null
    }, true);
    if (f.action === 'handoff' && st.state !== 'agent') set_state('queued');
  }
  function on_ack(f) {
    seen(f.seq);
    mark_mine(f.reply_to, f.seq);
  }
  function on_queued(f) {
    seen(f.seq);
    st.queue = {
      queue: f.queue, position: f.position, estimated_wait_s: f.estimated_wait_s,
      offline: !!f.offline, reply_by: f.reply_by, ask_email: !!f.ask_email && !st.email
    };
    set_state(f.offline ? 'offline' : 'queued');
    if (f.offline) live.textContent = 'Our team is away. ' + offline_text();
    else if (f.position) live.textContent = 'You are ' + ordinal(f.position) + ' in the queue. ' + wait_text();
  }
  /* A message replayed on resume (the customer's own, the bot's or an agent's). */
  function on_replayed_message(f) {
    seen(f.seq);
    var from = f.from || f.role || f.author;
    if (from === 'customer') {
      if (f.id && st.items.some(function (x) { return x.kind === 'me' && x.id === f.id; })) {
        mark_mine(f.id, f.seq);
        return;
      }
      if (st.items.some(function (x) { return x.kind === 'me' && x.seq === f.seq; })) return;
      add_item({ kind: 'me', id: f.id, seq: f.seq, text: f.text, status: 'sent' }, false);
    } else if (from === 'agent') {
      add_item({ kind: 'agent', seq: f.seq, text: f.text, agent: f.agent || st.agent }, true);
    } else {
      add_item({ kind: 'bot', seq: f.seq, text: f.text, action: f.action, articles: f.articles || [], choices: f.choices || null }, true);
    }
  }
  var last_error = '';
  function on_error(f) {
    var code = f.code || 'error';
    if (!ready && code !== 'bad_token') {
      /* Refused before welcome (service down, throttled ...): the header says
       * so and the retry loop goes on; the transcript stays clean. */
      last_error = f.message || code;
      set_conn('offline', 'Chat unavailable');
      return;
    }
    if (code === 'unknown_conversation' || code === 'bad_token' || code === 'not_found') {
      forget_conversation();
      if (ws) ws.close();
      return;
    }
    /* A refused message (e.g. rate limit): un-mark it so it is not stuck as sending. */
    if (f.reply_to) {
      st.items.forEach(function (x) {
        if (x.kind === 'me' && x.id === f.reply_to) { x.status = 'error'; update_item(x); }
      });
    }
    add_item({ kind: 'event', text: f.message || 'Something went wrong. Please try again.' }, true);
  }

  function forget_conversation() {
    st.token = null;
    st.conversation = null;
    st.last_seq = 0;
    st.state = 'bot';
    st.rated = false;
    st.agent = null;
    st.queue = null;
    save_state();
  }

  var typing_timer = 0;
  function show_typing(from) {
    if (st.state === 'closed' || st.state === 'rated') return;
    var who = from === 'bot' ? 'Assistant' : (st.agent || 'Support');
    typing_el.querySelector('.tt').textContent = ' ' + who + ' is typing…';
    typing_el.hidden = false;
    clearTimeout(typing_timer);
    typing_timer = setTimeout(hide_typing, TYPING_SHOW_MS);
  }
  function hide_typing() {
    typing_el.hidden = true;
    clearTimeout(typing_timer);
  }

  /* ---------- customer actions ---------- */
  var msg_counter = 0;
  function new_id() {
    return 'c' + Date.now().toString(36) + '-' + (msg_counter++) + Math.random().toString(36).slice(2, 6);
  }
  function send_text(text, choice) {
    text = String(text || '').trim();
    if (!text) return;
    if (st.state === 'closed' || st.state === 'rated') return;
    var it = { kind: 'me', id: new_id(), text: text, status: 'sending' };
    if (choice) it.choice = choice;
    add_item(it, false);
    var f = { type: 'message', id: it.id, text: text };
    if (choice) f.choice = choice;
    send_frame(f);
  }
  function pick_choice(it, c) {
    var label = choice_label(c);
    it.chosen = label;
    update_item(it);
    send_text(label, c && typeof c === 'object' && c.id != null ? String(c.id) : null);
  }
  function give_feedback(it, helpful) {
    it.helpful = helpful;
    update_item(it);
    send_frame({ type: 'feedback', seq: it.seq, helpful: helpful });
  }
  function ask_person() {
    send_frame({ type: 'handoff' });
    set_state('queued');
  }
  function restart() {
    forget_conversation();
    st.items = [];
    log.textContent = '';
    items_by_id = {};
    save_state();
    apply_state();
    if (ws) ws.close(1000);
    else connect();
    greet();
    input.focus();
  }
  function greet() {
    if (!st.items.length) {
      add_item({ kind: 'bot', text: 'Hi! Ask me anything about orders, delivery, returns or your account. If I cannot help, I will find you a person.' }, false);
    }
  }

  var last_typing_sent = 0;
  input.addEventListener('input', function () {
    input.style.height = 'auto';
    input.style.height = Math.min(120, input.scrollHeight + 2) + 'px';
    if (st.state === 'agent' && Date.now() - last_typing_sent > 3000 && input.value.trim()) {
      last_typing_sent = Date.now();
      send_frame({ type: 'typing' });
    }
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit ? composer.requestSubmit() : submit();
    }
  });
  function submit(e) {
    if (e) e.preventDefault();
    var t = input.value;
    if (!t.trim()) return;
    input.value = '';
    input.style.height = '';
    send_text(t);
  }
  composer.addEventListener('submit', submit);
  handoff_btn.addEventListener('click', ask_person);

  rating.addEventListener('submit', function (e) {
    e.preventDefault();
    var picked = rating.querySelector('input[name=score]:checked');
    var err = rating.querySelector('.err');
    if (!picked) {
      err.textContent = 'Please choose a score from 1 to 5.';
      err.hidden = false;
      rating.querySelector('input[name=score]').focus();
      return;
    }
    err.hidden = true;
    var comment = rating.querySelector('textarea').value.trim();
    var f = { type: 'rating', score: +picked.value };
    if (comment) f.comment = comment;
    send_frame(f);
    st.rated = true;
    add_item({ kind: 'event', text: 'Thank you for your feedback (' + picked.value + ' of 5).' }, true);
    set_state('rated');
    var b = root.querySelector('.restart button');
    if (b) b.focus();
  });

  /* ---------- open / close ---------- */
  function open_panel(is_restore) {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    launcher.setAttribute('aria-label', 'Close chat: ' + cfg.title);
    unread = 0;
    badge.hidden = true;
    st.open = true;
    save_state();
    greet();
    connect();
    scroll_down();
    if (is_restore === true) return;
    setTimeout(function () {
      if (!composer.hidden) input.focus();
      else if (!rating.hidden) rating.querySelector('input').focus();
      else close_btn.focus();
    }, 0);
  }
  function close_panel() {
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-label', 'Open chat: ' + cfg.title);
    st.open = false;
    save_state();
    launcher.focus();
  }
  launcher.addEventListener('click', function () {
    if (panel.hidden) open_panel(false); else close_panel();
  });
  close_btn.addEventListener('click', close_panel);
  panel.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') { e.stopPropagation(); close_panel(); }
  });

  /* ---------- start ---------- */
  function start() {
    document.body.appendChild(host);
    st.items.forEach(redraw_item);
    apply_state();
    if (st.token) connect(); /* resume: the server replays what we missed */
    if (cfg.open || st.open) open_panel(true);
  }
  window.__caredesk = {
    open: function () { open_panel(false); },
    close: close_panel,
    send: send_text,
    state: function () { return { state: st.state, token: st.token, last_seq: st.last_seq, connected: ready }; }
  };
  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
