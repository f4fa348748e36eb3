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
  /* ---------- words: English, and Spanish for pages in Spanish ---------- */
  var WORDS = {
    en: {
      title: 'Help', subtitle: 'Instant answers, or a real person', open: 'Open chat: {0}',
      open_n: 'Open chat: {0} ({1} new)', close_panel: 'Close chat: {0}', close: 'Close chat',
      not_connected: 'Not connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…',
      connected: 'Connected', offline_net: 'Offline: waiting for the network', unavailable: 'Chat unavailable',
      lost: 'Connection lost', retrying: '{0}: retrying in {1} s', retrying_now: '{0}: retrying…',
      placeholder: 'Ask a question…', your_message: 'Your message',
      hint: 'Press Enter to send, Shift+Enter for a new line.', send: 'Send message',
      person: 'Talk to a person', end_chat: 'End chat',
      expired: 'That conversation has ended. Ask away to start a new one.', rate_q: 'How did we do?', poor: 'Poor', excellent: 'Excellent',
      of5: '{0} out of 5', comment: 'Anything to add? (optional)', send_rating: 'Send rating',
      pick_score: 'Please choose a score from 1 to 5.', thanks_rating: 'Thank you for your feedback ({0} of 5).',
      nps_q: 'How likely are you to recommend us to a friend or colleague?', nps_low: 'Not at all likely',
      nps_high: 'Extremely likely', of10: '{0} out of 10', nps_comment: 'What is the main reason for your score? (optional)',
      send_nps: 'Send', pick_nps: 'Please choose a number from 0 to 10.', thanks_nps: 'Thank you! ({0} of 10)',
      su_title: 'Status update', su_tracking: 'Reference', su_status: 'Status', su_owner: 'Handled by',
      su_next: 'Next update', su_workaround: 'In the meantime',
      you_said: 'You said:', sending: 'Sending…', refused: 'Not sent',
      assistant: '{0} assistant', assistant_short: 'Assistant', support: 'Support',
      sources: 'From our help centre:', topics: 'Suggested topics', helpful_q: 'Was this helpful?',
      yes: 'Yes', no: 'No', glad: 'Thanks, glad it helped.', noted: 'Thanks for telling us.',
      away: 'Our team is away right now. ', queue_pos: 'You are {0} in the queue. ',
      finding: 'Connecting you to a person… ', wait_unknown: 'Someone will be with you as soon as they are free.',
      wait: 'Expected wait: {0}.', reply_by: 'Leave your question here and we will reply by {0}.',
      reply_back: 'Leave your question here and we will reply as soon as we are back.',
      email_label: 'Your email address for our reply', save_email: 'Save email', reply_to: 'We will reply to {0}.',
      sub_offline: 'Leave a message: we will get back to you', sub_queued: 'Waiting for the next available person',
      sub_agent: 'You are chatting with {0}', sub_closed: 'This conversation has ended',
      restart: 'Start a new conversation', joined: '{0} joined the chat', left: '{0} left the chat',
      the_agent: 'The agent', transferred: 'We are passing you to a colleague who can help with this.',
      closed: 'The conversation was closed.', closed_by: 'The conversation was closed by {0}.', us: 'us',
      typing: ' {0} is typing…', went_wrong: 'Something went wrong. Please try again.',
      greeting: 'Hi! Ask me anything about orders, delivery, returns or your account. ' +
        'If I cannot help, I will find you a person.',
      under_min: 'under a minute', min1: 'about 1 minute', mins: 'about {0} minutes',
      hour1: 'about 1 hour', hours: 'about {0} hours',
      ord: function (n) {
        var sfx = ['th', 'st', 'nd', 'rd'], v = n % 100;
        return n + (sfx[(v - 20) % 10] || sfx[v] || sfx[0]);
      }
    },
    es: {
      title: 'Ayuda', subtitle: 'Respuestas al instante, o una persona', open: 'Abrir chat: {0}',
      open_n: 'Abrir chat: {0} ({1} nuevos)', close_panel: 'Cerrar chat: {0}', close: 'Cerrar chat',
      not_connected: 'Sin conexión', connecting: 'Conectando…', reconnecting: 'Reconectando…',
      connected: 'Conectado', offline_net: 'Sin red: esperando conexión', unavailable: 'Chat no disponible',
      lost: 'Conexión perdida', retrying: '{0}: reintento en {1} s', retrying_now: '{0}: reintentando…',
      placeholder: 'Escribe tu pregunta…', your_message: 'Tu mensaje',
      hint: 'Pulsa Intro para enviar y Mayús+Intro para una línea nueva.', send: 'Enviar mensaje',
      person: 'Hablar con una persona', end_chat: 'Terminar el chat',
      expired: 'Esa conversación ha terminado. Pregunta lo que quieras para empezar otra.', rate_q: '¿Qué tal te hemos atendido?', poor: 'Mal', excellent: 'Excelente',
      of5: '{0} de 5', comment: '¿Algo más que añadir? (opcional)', send_rating: 'Enviar valoración',
      pick_score: 'Elige una puntuación del 1 al 5.', thanks_rating: 'Gracias por tu valoración ({0} de 5).',
      nps_q: '¿Qué probabilidad hay de que nos recomiendes a un amigo o colega?', nps_low: 'Nada probable',
      nps_high: 'Muy probable', of10: '{0} de 10', nps_comment: '¿Cuál es el motivo principal de tu puntuación? (opcional)',
      send_nps: 'Enviar', pick_nps: 'Elige un número del 0 al 10.', thanks_nps: '¡Gracias! ({0} de 10)',
      su_title: 'Actualización de estado', su_tracking: 'Referencia', su_status: 'Estado', su_owner: 'Lo gestiona',
      su_next: 'Próxima actualización', su_workaround: 'Mientras tanto',
      you_said: 'Has escrito:', sending: 'Enviando…', refused: 'No enviado',
      assistant: 'Asistente de {0}', assistant_short: 'Asistente', support: 'Soporte',
      sources: 'De nuestro centro de ayuda:', topics: 'Temas sugeridos', helpful_q: '¿Te ha sido útil?',
      yes: 'Sí', no: 'No', glad: 'Gracias, nos alegra haberte ayudado.', noted: 'Gracias por decírnoslo.',
      away: 'Nuestro equipo no está disponible ahora. ', queue_pos: 'Eres el número {0} en la cola. ',
      finding: 'Te estamos pasando con una persona… ', wait_unknown: 'Alguien te atenderá en cuanto quede libre.',
      wait: 'Espera estimada: {0}.', reply_by: 'Deja aquí tu pregunta y te responderemos antes del {0}.',
      reply_back: 'Deja aquí tu pregunta y te responderemos en cuanto volvamos.',
      email_label: 'Tu correo electrónico para la respuesta', save_email: 'Guardar correo',
      reply_to: 'Te responderemos a {0}.',
      sub_offline: 'Deja un mensaje: te contestaremos', sub_queued: 'Esperando a la próxima persona disponible',
      sub_agent: 'Estás hablando con {0}', sub_closed: 'Esta conversación ha terminado',
      restart: 'Empezar una conversación nueva', joined: '{0} se ha unido al chat', left: '{0} ha salido del chat',
      the_agent: 'El agente', transferred: 'Te pasamos con un compañero que puede ayudarte con esto.',
      closed: 'La conversación se ha cerrado.', closed_by: '{0} ha cerrado la conversación.', us: 'Nosotros',
      typing: ' {0} está escribiendo…', went_wrong: 'Algo ha fallado. Inténtalo de nuevo.',
      greeting: '¡Hola! Pregúntame lo que quieras sobre pedidos, envíos, devoluciones o tu cuenta. ' +
        'Si no puedo ayudarte, te paso con una persona.',
      under_min: 'menos de un minuto', min1: 'alrededor de 1 minuto', mins: 'alrededor de {0} minutos',
      hour1: 'alrededor de 1 hora', hours: 'alrededor de {0} horas',
      ord: function (n) { return String(n); }
    }
  };
  /* The page's language as an ISO 639-1 code ("en-GB" -> "en"). */
  function page_lang() {
    var l = (document.documentElement.lang || navigator.language || 'en').toLowerCase();
    var m = l.match(/^[a-z]{2,3}/);
    return m ? m[0] : 'en';
  }
  var words = WORDS[page_lang()] || WORDS.en;
  /* The text for key in the page's language, with {0}, {1} ... filled in. */
  function T(key) {
    var w = words[key] != null ? words[key] : WORDS.en[key];
    var args = arguments;
    return String(w).replace(/\{(\d)\}/g, function (m, i) { return args[+i + 1]; });
  }
  if (!script || !script.getAttribute('data-title')) cfg.title = T('title');
  if (!script || !script.getAttribute('data-subtitle')) cfg.subtitle = T('subtitle');

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
        if (href.charAt(0) === '/') href = server_origin + href; /* the server's pages, not the host's */
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
    if (s < 60) return T('under_min');
    var m = Math.round(s / 60);
    if (m < 60) return m === 1 ? T('min1') : T('mins', m);
    var hrs = Math.round(m / 60);
    return hrs === 1 ? T('hour1') : T('hours', hrs);
  }
  function ordinal(n) { return words.ord(n); }

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
    '[hidden]{display:none!important}',
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
    '.su{border-left:4px solid var(--cd-accent)}',
    '.su-title{margin:0 0 6px;font-weight:700}',
    '.su dl{display:grid;grid-template-columns:auto 1fr;gap:3px 10px;margin:0;font-size:14px}',
    '.su dt{color:var(--cd-muted)}',
    '.su dd{margin:0;overflow-wrap:anywhere}',
    '.su .tid{font-family:ui-monospace,Menlo,Consolas,monospace}',
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
    '.nps{padding:14px 16px 16px;background:#fff;border-top:1px solid var(--cd-line)}',
    '.nps[hidden]{display:none}',
    '.nps fieldset{border:0;margin:0;padding:0}',
    '.nps legend{font-weight:650;margin-bottom:6px;padding:0}',
    '.nps textarea{width:100%;margin-top:4px;min-height:44px}',
    '.nps label.c{display:block;margin-top:8px;font-size:14px}',
    '.nps-scale{flex-wrap:wrap;gap:4px}',
    '.nps-scale span{width:30px;height:36px;border-radius:8px}',
    '.nps .scale{width:auto;max-width:374px}',
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
    'aria-label': T('open', cfg.title)
  }, [svg(ICON_CHAT, 28), badge]);

  var conn_el = h('span', { class: 'conn', 'data-s': 'idle' }, [h('i'), h('span', { text: T('not_connected') })]);
  var sub_el = h('p', { class: 'sub', text: cfg.subtitle });
  var close_btn = h('button', { class: 'icon', type: 'button', 'aria-label': T('close') }, [svg(ICON_CLOSE, 20)]);
  var banner = h('div', { class: 'banner', role: 'status', hidden: true });
  var log = h('ol', { class: 'log', 'aria-label': 'Conversation', tabindex: '0' });
  var live = h('div', { class: 'sr', 'aria-live': 'polite', 'aria-atomic': 'false' });
  var typing_el = h('div', { class: 'typing', hidden: true }, [
    h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('span'), h('span'), h('span')]),
    h('span', { class: 'tt' })
  ]);
  var handoff_btn = h('button', { class: 'ghost', type: 'button', text: T('person') });
  var end_btn = h('button', { class: 'ghost', type: 'button', text: T('end_chat') });
  var bar = h('div', { class: 'bar' }, [handoff_btn, end_btn]);
  var input = h('textarea', {
    id: 'cd-input', rows: '1', placeholder: T('placeholder'), maxlength: '4000',
    'aria-describedby': 'cd-hint', autocomplete: 'off'
  });
  var send_btn = h('button', { class: 'send', type: 'submit', 'aria-label': T('send') }, [svg(ICON_SEND, 20)]);
  var composer = h('form', { class: 'composer' }, [
    h('label', { class: 'sr', for: 'cd-input', text: T('your_message') }),
    h('span', { class: 'sr', id: 'cd-hint', text: T('hint') }),
    input, send_btn
  ]);
  var rating = build_rating();
  var nps = build_nps();
  var panel = h('section', {
    id: 'cd-panel', class: 'panel', role: 'dialog', 'aria-labelledby': 'cd-title', hidden: true
  }, [
    h('header', null, [
      h('div', { class: 'who' }, [h('h2', { id: 'cd-title', text: cfg.title }), sub_el, conn_el]),
      close_btn
    ]),
    banner, log, typing_el, bar, composer, rating, nps, live
  ]);
  root.appendChild(launcher);
  root.appendChild(panel);

  function build_rating() {
    var stars = h('div', { class: 'stars' });
    for (var i = 1; i <= 5; i++) {
      stars.appendChild(h('label', null, [
        h('input', { type: 'radio', name: 'score', value: String(i), 'aria-label': T('of5', i) }),
        h('span', { text: String(i), 'aria-hidden': 'true' })
      ]));
    }
    var form = h('form', { class: 'rating', hidden: true, 'aria-labelledby': 'cd-rate-q' }, [
      h('fieldset', null, [
        h('legend', { id: 'cd-rate-q', text: T('rate_q') }),
        stars,
        h('div', { class: 'scale', 'aria-hidden': 'true' }, [h('span', { text: T('poor') }), h('span', { text: T('excellent') })])
      ]),
      h('label', { class: 'c', for: 'cd-comment', text: T('comment') }),
      h('textarea', { id: 'cd-comment', name: 'comment', maxlength: '1000', rows: '2' }),
      h('p', { class: 'note err', role: 'alert', hidden: true }),
      h('button', { class: 'primary', type: 'submit', text: T('send_rating') })
    ]);
    return form;
  }

  /* The NPS question, when the server asks it after the rating (nps_request). */
  function build_nps() {
    var scale = h('div', { class: 'stars nps-scale' });
    for (var i = 0; i <= 10; i++) {
      scale.appendChild(h('label', null, [
        h('input', { type: 'radio', name: 'nps', value: String(i), 'aria-label': T('of10', i) }),
        h('span', { text: String(i), 'aria-hidden': 'true' })
      ]));
    }
    return h('form', { class: 'nps', hidden: true, 'aria-labelledby': 'cd-nps-q' }, [
      h('fieldset', null, [
        h('legend', { id: 'cd-nps-q', text: T('nps_q') }),
        scale,
        h('div', { class: 'scale', 'aria-hidden': 'true' }, [h('span', { text: T('nps_low') }), h('span', { text: T('nps_high') })])
      ]),
      h('label', { class: 'c', for: 'cd-nps-comment', text: T('nps_comment') }),
      h('textarea', { id: 'cd-nps-comment', name: 'comment', maxlength: '1000', rows: '2' }),
      h('p', { class: 'note err', role: 'alert', hidden: true }),
      h('button', { class: 'primary', type: 'submit', text: T('send_nps') })
    ]);
  }

  /* ---------- rendering of conversation items ---------- */
  var items_by_id = {};
  function agent_label() { return st.agent || T('support'); }

  function render_item(it) {
    var li;
    if (it.kind === 'me') {
      li = h('li', { class: 'me' }, [
        h('span', { class: 'sr', text: T('you_said') }),
        h('div', { class: 'bubble', text: it.text }),
        h('span', { class: 'meta', text: it.status === 'sending' ? T('sending') : it.status === 'error' ? T('refused') : '' })
      ]);
    } else if (it.kind === 'bot' || it.kind === 'agent') {
      var who = it.kind === 'bot' ? T('assistant', cfg.title) : (it.agent || agent_label());
      var bubble = it.status_update ? status_card(it.status_update) : h('div', { class: 'bubble' }, [rich(it.text)]);
      if (it.articles && it.articles.length) {
        var ul = h('ul');
        it.articles.slice(0, 3).forEach(function (a) {
          ul.appendChild(h('li', null, [h('a', {
            href: article_href(a), target: '_blank', rel: 'noopener',
            class: 'article', text: a.title || String(a.id || '').replace(/[-_]+/g, ' ').replace(/^./, function (c) { return c.toUpperCase(); })
          })]));
        });
        bubble.appendChild(h('div', { class: 'sources' }, [h('p', { text: T('sources') }), ul]));
      }
      if (it.choices && it.choices.length) {
        var box = h('div', { class: 'choices', role: 'group', 'aria-label': T('topics') });
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
        var fb = h('div', { class: 'fb', role: 'group', 'aria-label': T('helpful_q') });
        if (it.helpful == null) {
          fb.appendChild(h('span', { text: T('helpful_q') }));
          fb.appendChild(h('button', { class: 'chip', type: 'button', text: T('yes'), onclick: function () { give_feedback(it, true); } }));
          fb.appendChild(h('button', { class: 'chip', type: 'button', text: T('no'), onclick: function () { give_feedback(it, false); } }));
        } else {
          fb.appendChild(h('span', { text: it.helpful ? T('glad') : T('noted') }));
        }
        bubble.appendChild(fb);
      }
      li = h('li', { class: it.kind }, [h('span', { class: 'meta', text: who }), bubble]);
    } else {
      li = h('li', { class: 'event' }, [h('p', { text: it.text })]);
    }
    return li;
  }

  /* An escalation status update as a card: reference, status, owner, when the
   * next update comes (in the customer's own time) and any workaround. */
  function status_card(su) {
    var when = su.next_update_s ? new Date(su.next_update_s * 1000) : null;
    var next = when && isFinite(when) ? when.toLocaleString(page_lang(), { dateStyle: 'medium', timeStyle: 'short' }) : su.next_update || '';
    var rows = [[T('su_tracking'), su.tracking_id], [T('su_status'), su.status], [T('su_owner'), su.owner],
      [T('su_next'), next], [T('su_workaround'), su.workaround]];
    var dl = h('dl');
    rows.forEach(function (r) {
      if (!r[1]) return;
      dl.appendChild(h('dt', { text: r[0] }));
      dl.appendChild(h('dd', { class: r[0] === T('su_tracking') ? 'tid' : null, text: r[1] }));
    });
    return h('div', { class: 'bubble su', role: 'group', 'aria-label': T('su_title') + ' ' + (su.tracking_id || '') }, [
      h('p', { class: 'su-title', text: T('su_title') }), dl
    ]);
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
      var who = it.kind === 'bot' ? T('assistant_short') : it.kind === 'agent' ? (it.agent || agent_label()) : '';
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
    launcher.setAttribute('aria-label', T('open_n', cfg.title, unread));
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
    var with_people = s === 'queued' || s === 'agent' || s === 'offline';
    bar.hidden = closed;
    handoff_btn.hidden = with_people;
    end_btn.hidden = !with_people;
    composer.hidden = closed;
    rating.hidden = s !== 'closed' || !!st.rated;
    nps.hidden = s !== 'rated' || st.nps !== 'asked';
    if (s === 'queued' || s === 'offline') {
      var q = st.queue || {};
      var key = JSON.stringify([s, q, st.email || '']);
      if (banner.dataset.key !== key || banner.hidden) {
        banner.dataset.key = key;
        var frag = h('div');
        if (q.offline || s === 'offline') {
          frag.appendChild(h('strong', { text: T('away') }));
          frag.appendChild(document.createTextNode(offline_text()));
          if (q.ask_email) frag.appendChild(email_form());
          else if (st.email) frag.appendChild(h('p', { class: 'note', text: T('reply_to', st.email) }));
        } else if (q.position) {
          frag.appendChild(h('strong', { text: T('queue_pos', ordinal(q.position)) }));
          frag.appendChild(document.createTextNode(wait_text()));
        } else {
          frag.appendChild(h('strong', { text: T('finding') }));
        }
        show_banner(frag);
      }
      sub_el.textContent = q.offline ? T('sub_offline') : T('sub_queued');
    } else if (s === 'agent' || s === 'with_agent') {
      show_banner(null);
      sub_el.textContent = T('sub_agent', agent_label());
    } else if (closed) {
      show_banner(null);
      sub_el.textContent = T('sub_closed');
      input.blur();
    } else {
      show_banner(null);
      sub_el.textContent = cfg.subtitle;
    }
    if (closed && st.rated && !root.querySelector('.restart')) {
      panel.insertBefore(h('div', { class: 'bar restart' }, [h('button', {
        class: 'ghost', type: 'button', text: T('restart'), onclick: restart
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
    return q.estimated_wait_s == null ? T('wait_unknown') : T('wait', fmt_wait(q.estimated_wait_s));
  }
  function offline_text() {
    var q = st.queue || {};
    var t = q.reply_by ? Date.parse(q.reply_by) : NaN;
    if (isFinite(t)) {
      return T('reply_by', new Date(t).toLocaleString([], { weekday: 'long', hour: '2-digit', minute: '2-digit' }));
    }
    return T('reply_back');
  }
  function email_form() {
    var inp = h('input', { id: 'cd-email', type: 'email', autocomplete: 'email', required: true, placeholder: 'you@example.com' });
    var form = h('form', { class: 'row email' }, [
      h('label', { class: 'sr', for: 'cd-email', text: T('email_label') }),
      inp, h('button', { class: 'ghost', type: 'submit', text: T('save_email') })
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


  function connect() {
    wanted = true;
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) return;
    clearTimeout(retry_timer);
    clearInterval(countdown_timer);
    set_conn('connecting', attempts ? T('reconnecting') : T('connecting'));
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
      else set_conn('idle', T('not_connected'));
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
      var why = last_error ? T('unavailable') : T('lost');
      set_conn('offline', navigator.onLine === false ? T('offline_net')
        : left > 0 ? T('retrying', why, left) : T('retrying_now', why));
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
      st.agent = f.agent && (f.agent.name || f.agent) || T('support');
      if (typeof st.agent !== 'string') st.agent = T('support');
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: T('joined', st.agent) }, true);
      set_state('agent');
      break;
    case 'agent_message':
      seen(f.seq);
      hide_typing();
      add_item({ kind: 'agent', seq: f.seq, text: f.text, agent: f.agent || st.agent,
        status_update: f.status_update && typeof f.status_update === 'object' ? f.status_update : null }, true);
      if (st.state !== 'agent') set_state('agent');
      break;
    case 'agent_left':
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: T('left', f.agent || st.agent || T('the_agent')) }, true);
      break;
    case 'transferred':
      seen(f.seq);
      add_item({ kind: 'event', seq: f.seq, text: T('transferred') }, true);
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
    case 'rating_ok':
      break;
    case 'typing':
      if (f.from !== 'customer') show_typing(f.from);
      break;
    case 'closed':
      seen(f.seq);
      hide_typing();
      add_item({ kind: 'event', seq: f.seq, text: f.by === 'customer' ? T('closed') : T('closed_by', f.by === 'agent' ? agent_label() : T('us')) }, true);
      set_state('closed');
      break;
    case 'rating_request':
      if (st.state !== 'rated') set_state('closed');
      break;
    case 'nps_request':
      if (st.nps !== 'done') st.nps = 'asked';
      set_state(st.state);
      break;
    case 'nps_ok':
      break;
      st.rated = true;
      set_state('rated');
      break;
    case 'error': on_error(f); break;
    default: break;
    }
  }

  var CD_EVENTS = {
    transferred: T('transferred'),
    agent_left: T('left', T('the_agent')),
    offline: T('away')
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
      st.nps = null;
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
    set_conn('online', T('connected'));
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
    if (f.offline) live.textContent = T('away') + offline_text();
    else if (f.position) live.textContent = T('queue_pos', ordinal(f.position)) + wait_text();
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
      set_conn('offline', T('unavailable'));
      return;
    }
    if (code === 'unknown_conversation' || code === 'bad_token' || code === 'not_found') {
      if (st.token) add_item({ kind: 'event', text: T('expired') }, true);
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
    add_item({ kind: 'event', text: f.message || T('went_wrong') }, true);
  }

  function forget_conversation() {
    st.token = null;
    st.conversation = null;
    st.last_seq = 0;
    st.state = 'bot';
    st.rated = false;
    st.nps = null;
    st.agent = null;
    st.queue = null;
    save_state();
  }

  var typing_timer = 0;
  function show_typing(from) {
    if (st.state === 'closed' || st.state === 'rated') return;
    var who = from === 'bot' ? T('assistant_short') : (st.agent || T('support'));
    typing_el.querySelector('.tt').textContent = T('typing', who);
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
      add_item({ kind: 'bot', text: T('greeting') }, false);
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
  end_btn.addEventListener('click', function () {
    send_frame({ type: 'close' });
    end_btn.disabled = true;
    setTimeout(function () { end_btn.disabled = false; }, 3000);
  });

  rating.addEventListener('submit', function (e) {
    e.preventDefault();
    var picked = rating.querySelector('input[name=score]:checked');
    var err = rating.querySelector('.err');
    if (!picked) {
      err.textContent = T('pick_score');
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
    add_item({ kind: 'event', text: T('thanks_rating', picked.value) }, true);
    set_state('rated');
    var b = root.querySelector('.restart button');
    if (b) b.focus();
  });

  nps.addEventListener('submit', function (e) {
    e.preventDefault();
    var picked = nps.querySelector('input[name=nps]:checked');
    var err = nps.querySelector('.err');
    if (!picked) {
      err.textContent = T('pick_nps');
      err.hidden = false;
      nps.querySelector('input[name=nps]').focus();
      return;
    }
    err.hidden = true;
    var comment = nps.querySelector('textarea').value.trim();
    var f = { type: 'nps', score: +picked.value };
    if (comment) f.comment = comment;
    send_frame(f);
    st.nps = 'done';
    add_item({ kind: 'event', text: T('thanks_nps', picked.value) }, true);
    set_state('rated');
    var b = root.querySelector('.restart button');
    if (b) b.focus();
  });

  /* ---------- open / close ---------- */
  function open_panel(is_restore) {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    launcher.setAttribute('aria-label', T('close_panel', cfg.title));
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
    launcher.setAttribute('aria-label', T('open', cfg.title));
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
    state: function () {
      return { state: st.state, conversation: st.conversation, token: st.token, last_seq: st.last_seq, connected: ready };
    }
  };
  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
