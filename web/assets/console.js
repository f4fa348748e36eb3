/* caredesk consoles: what /agent, /author and /dashboard share: sign-in with a
 * token kept in sessionStorage, the REST client, a safe Markdown renderer, DOM
 * and time helpers. Plain browser JavaScript, no build step. Text from the
 * network is escaped or set with textContent, never inserted as raw HTML. */
(function () {
  'use strict';
  var TOKEN_KEY = 'caredesk.token';
  var CD = {};

  CD.token = function () {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  };
  CD.set_token = function (t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage blocked: the token lives for this page only */ }
  };

  /* Element builder: h('div', {class: 'x', text: 'y', onclick: f}, [children]). */
  CD.h = function (tag, props, kids) {
    var el = document.createElement(tag);
    if (props) for (var k in props) {
      var v = props[k];
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'html') el.innerHTML = v; /* only for CD.md() output */
      else if (k === 'class') el.className = v;
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach(function (c) {
      if (c == null || c === false) return;
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    });
    return el;
  };
  /* SVG element builder: svg('rect', {x: 1, class: 'bar'}, [children]). */
  CD.svg = function (tag, attrs, kids) {
    var el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs || {}) el.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) {
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    });
    return el;
  };
  CD.$ = function (sel, root) { return (root || document).querySelector(sel); };
  CD.$$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  CD.clear = function (el) { while (el.firstChild) el.removeChild(el.firstChild); return el; };
  /* A data table: head lists the column headings, each a string or {text, num: 1} for a
   * column of numbers (right-aligned); rows are its <tr> elements. */
  CD.table = function (head, rows) {
    return CD.h('table', { class: 'data' }, [
      CD.h('thead', null, [CD.h('tr', null, head.map(function (c) {
        return CD.h('th', { scope: 'col', class: c.num ? 'num' : null, text: c.text || c });
      }))]),
      CD.h('tbody', null, rows)]);
  };

  CD.esc = function (s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  };

  /* REST: JSON in and out, Bearer token. Throws an Error with .status and the
   * server's message; a 401 signs the user out. */
  CD.api = function (path, opts) {
    opts = opts || {};
    var headers = { Accept: 'application/json' };
    var tok = opts.token || CD.token();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    var body = opts.body;
    if (body !== undefined && typeof body !== 'string') {
      body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
    return fetch(path, { method: opts.method || 'GET', headers: headers, body: body })
      .then(function (res) {
        return res.text().then(function (txt) {
          var data = null;
          if (txt) { try { data = JSON.parse(txt); } catch (e) { data = { message: txt }; } }
          if (!res.ok) {
            var msg = (data && (data.message || data.error)) || (res.status + ' ' + res.statusText);
            var err = new Error(typeof msg === 'string' ? msg : JSON.stringify(msg));
            err.status = res.status;
            err.data = data;
            if (res.status === 401 && !opts.token && !opts.quiet401) CD.sign_out('Your session has expired or the token is no longer valid.');
            throw err;
          }
          return data;
        });
      });
  };

  CD.ws_url = function (path) {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + path;
  };

  /* ---------- time and numbers ---------- */
  CD.dur = function (s) {
    s = Math.max(0, Math.round(+s || 0));
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + 'm ' + (r < 10 ? '0' : '') + r + 's';
    var hr = Math.floor(m / 60);
    return hr + 'h ' + (m % 60) + 'm';
  };
  /* Milliseconds since the epoch of ts: a number of seconds or milliseconds, or a date
   * string; NaN when it is none. */
  function ms_of(ts) {
    return typeof ts === 'number' ? (ts > 1e12 ? ts : ts * 1000) : Date.parse(ts);
  }
  CD.ago = function (ts) {
    if (!ts) return '';
    var t = ms_of(ts);
    if (!isFinite(t)) return '';
    var s = Math.round((Date.now() - t) / 1000);
    if (s < 45) return 'just now';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    if (s < 86400 * 14) { var d = Math.round(s / 86400); return d + (d === 1 ? ' day ago' : ' days ago'); }
    return new Date(t).toLocaleDateString();
  };
  CD.when = function (ts) {
    if (!ts) return '';
    var t = ms_of(ts);
    if (!isFinite(t)) return '';
    return new Date(t).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  };
  CD.time = function (ts) {
    var t = ms_of(ts);
    if (!isFinite(t)) return '';
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  };
  /* The ISO week (YYYY-Www) of the date d, local time. */
  CD.iso_week = function (d) {
    var t = new Date(d.getFullYear(), d.getMonth(), d.getDate());
    t.setDate(t.getDate() + 3 - (t.getDay() + 6) % 7); /* the Thursday of its week */
    var y = t.getFullYear();
    var jan4 = new Date(y, 0, 4);
    var w = 1 + Math.round(((t - jan4) / 86400000 - 3 + (jan4.getDay() + 6) % 7) / 7);
    return y + '-W' + (w < 10 ? '0' : '') + w;
  };
  CD.pct = function (x) {
    if (x == null || !isFinite(x)) return '–';
    if (x > 1) x = x / 100;
    return (Math.round(x * 1000) / 10) + '%';
  };
  CD.humanize = function (s) {
    return String(s || '').replace(/[_-]+/g, ' ').replace(/^\w/, function (c) { return c.toUpperCase(); });
  };

  /* ---------- Markdown (safe subset) ----------
   * Headings, paragraphs, lists, block quotes, fenced code, tables, **bold**,
   * *italic*, `code`, [links](url) with http(s), mailto or relative URLs.
   * Input is escaped first, so HTML in an article shows as text. */
  function md_inline(s) {
    var codes = [];
    s = s.replace(/`([^`]+)`/g, function (m, c) { codes.push(c); return '\u0000' + (codes.length - 1) + '\u0000'; });
    s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (m, t, u) {
      var url = u.replace(/&amp;/g, '&');
      if (!/^(https?:|mailto:|\/|#)/i.test(url)) return t;
      return '<a href="' + CD.esc(url) + '">' + t + '</a>';
    });
    s = s.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
    s = s.replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>');
    s = s.replace(/(^|[^_\w])_([^_\s][^_]*)_(?!\w)/g, '$1<em>$2</em>');
    s = s.replace(/\u0000(\d+)\u0000/g, function (m, i) { return '<code>' + codes[+i] + '</code>'; });
    return s;
  }
  /* shift: heading levels to add (an article shown under a page's own h2
   * starts at h3); the class keeps the look of the level written. */
  CD.md = function (src, shift) {
    shift = shift || 0;
    var lines = CD.esc(String(src || '').replace(/\r/g, '')).split('\n');
    var out = [], i = 0, para = [];
    function flush() {
      if (para.length) out.push('<p>' + md_inline(para.join(' ')) + '</p>');
      para = [];
    }
    while (i < lines.length) {
      var l = lines[i], m;
      if (/^```/.test(l)) {
        flush();
        var code = [];
        i++;
        while (i < lines.length && !/^```/.test(lines[i])) code.push(lines[i++]);
        i++;
        out.push('<pre><code>' + code.join('\n') + '</code></pre>');
        continue;
      }
      if ((m = l.match(/^(#{1,6})\s+(.*)$/))) {
        flush();
        var lv = Math.min(6, m[1].length), tag = 'h' + Math.min(6, lv + shift);
        out.push('<' + tag + ' class="h' + lv + '">' + md_inline(m[2]) + '</' + tag + '>');
        i++;
        continue;
      }
      if (/^\s*([-*+]|\d+[.)])\s+/.test(l)) {
        flush();
        var ordered = /^\s*\d/.test(l);
        var items = [];
        while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
          items.push('<li>' + md_inline(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, '')) + '</li>');
          i++;
        }
        out.push((ordered ? '<ol>' : '<ul>') + items.join('') + (ordered ? '</ol>' : '</ul>'));
        continue;
      }
      if (/^&gt;\s?/.test(l)) {
        flush();
        var q = [];
        while (i < lines.length && /^&gt;\s?/.test(lines[i])) q.push(lines[i++].replace(/^&gt;\s?/, ''));
        out.push('<blockquote>' + md_inline(q.join(' ')) + '</blockquote>');
        continue;
      }
      if (/^\|.*\|\s*$/.test(l) && i + 1 < lines.length && /^\|[\s:|-]+\|\s*$/.test(lines[i + 1])) {
        flush();
        var cells = function (row) { return row.trim().replace(/^\||\|$/g, '').split('|'); };
        var head = cells(l).map(function (c) { return '<th>' + md_inline(c.trim()) + '</th>'; }).join('');
        i += 2;
        var rows = [];
        while (i < lines.length && /^\|.*\|\s*$/.test(lines[i])) {
          rows.push('<tr>' + cells(lines[i++]).map(function (c) { return '<td>' + md_inline(c.trim()) + '</td>'; }).join('') + '</tr>');
        }
        out.push('<table><thead><tr>' + head + '</tr></thead><tbody>' + rows.join('') + '</tbody></table>');
        continue;
      }
      if (/^\s*$/.test(l)) { flush(); i++; continue; }
      para.push(l.trim());
      i++;
    }
    flush();
    return out.join('\n');
  };

  /* ---------- feedback ---------- */
  var toast_timer = 0;
  CD.toast = function (msg, bad) {
    var t = CD.$('.toast');
    if (!t) {
      t = CD.h('div', { class: 'toast', role: 'status', 'aria-live': 'polite' });
      document.body.appendChild(t);
    }
    t.className = 'toast' + (bad ? ' bad' : '');
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toast_timer);
    toast_timer = setTimeout(function () { t.hidden = true; }, 4000);
  };

  /* ---------- sign-in ----------
   * CD.require_signin({title, role, verify(token) -> Promise, onready(info)})
   * shows the sign-in card until verify() resolves, then calls onready. */
  var signin_opts = null;
  CD.require_signin = function (opts) {
    signin_opts = opts;
    var tok = CD.token();
    if (tok) {
      opts.verify(tok).then(function (info) { enter(info); }, function (e) {
        show_signin(e && e.status === 401 ? 'That token was not accepted. Sign in again.' :
          e && e.status === 403 ? 'This account does not have the ' + opts.role + ' role.' : null);
        if (!(e && (e.status === 401 || e.status === 403))) CD.set_token(tok);
      });
    } else {
      show_signin(null);
    }
  };
  function enter(info) {
    var card = CD.$('#signin');
    if (card) card.hidden = true;
    CD.$('#app').hidden = false;
    var who = CD.$('.topbar .who');
    if (who) who.textContent = info && info.name ? 'Signed in as ' + info.name : 'Signed in';
    var out = CD.$('#signout');
    if (out) out.hidden = false;
    signin_opts.onready(info || {});
  }
  function show_signin(message) {
    CD.$('#app').hidden = true;
    var out = CD.$('#signout');
    if (out) out.hidden = true;
    var card = CD.$('#signin');
    card.hidden = false;
    var err = CD.$('#signin-error');
    err.textContent = message || '';
    err.hidden = !message;
    var form = CD.$('#signin form');
    var input = CD.$('#signin input');
    if (!form.dataset.bound) {
      form.dataset.bound = '1';
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var tok = input.value.trim();
        if (!tok) { err.textContent = 'Paste the token printed by caredesk user add.'; err.hidden = false; input.focus(); return; }
        var btn = form.querySelector('button');
        btn.disabled = true;
        signin_opts.verify(tok).then(function (info) {
          CD.set_token(tok);
          input.value = '';
          btn.disabled = false;
          enter(info);
        }, function (e2) {
          btn.disabled = false;
          err.textContent = e2 && e2.status === 401 ? 'That token was not accepted.' :
            e2 && e2.status === 403 ? 'This account does not have the ' + signin_opts.role + ' role.' :
            'Could not sign in: ' + (e2 && e2.message || 'the server did not answer');
          err.hidden = false;
          input.focus();
          input.select();
        });
      });
    }
    setTimeout(function () { input.focus(); }, 0);
  }
  CD.sign_out = function (message) {
    CD.set_token('');
    if (signin_opts && signin_opts.onsignout) signin_opts.onsignout();
    if (signin_opts) show_signin(message || null);
  };
  document.addEventListener('click', function (e) {
    var t = e.target.closest && e.target.closest('#signout');
    if (t) { e.preventDefault(); CD.sign_out(null); }
  });

  /* Verifies a token over REST: GET /api/me when the server has it, else the
   * given fallback route. Resolves with {name, role}. */
  CD.verify_rest = function (fallback) {
    return function (tok) {
      return CD.api('/api/me', { token: tok }).catch(function (e) {
        if (e.status === 404 || e.status === 405) return CD.api(fallback, { token: tok }).then(function () { return {}; });
        throw e;
      });
    };
  };

  /* ---------- page chrome ----------
   * Every console page writes only what is its own: the topbar as
   * <header class="topbar" data-home="/x/" data-name="X"> with its own nav links
   * and status spans, and the sign-in card's heading and hint. The icon, the
   * brand, the links to the other consoles, the signed-in name, the sign-out button and
   * the token form are built here, once, before the page's own script runs. */
  var CONSOLES = [['/agent/', 'Agent'], ['/author/', 'Author'], ['/dashboard/', 'Dashboard']];
  var LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="26" height="26" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#2453c7"/>' +
    '<path d="M8 10h16v10H14l-6 5z" fill="#fff"/></svg>';
  function build_chrome() {
    if (!CD.$('link[rel=icon]'))
      document.head.appendChild(CD.h('link', { rel: 'icon', href: 'data:image/svg+xml,' + encodeURIComponent(LOGO) }));
    var bar = CD.$('header.topbar');
    if (bar && !CD.$('.brand', bar)) {
      var here = location.pathname.replace(/index\.html$/, '');
      var brand = CD.h('a', { class: 'brand', href: bar.dataset.home || '/' });
      brand.innerHTML = LOGO; /* a constant */
      brand.appendChild(document.createTextNode('caredesk '));
      brand.appendChild(CD.h('b', { text: bar.dataset.name || '' }));
      var nav = CD.$('nav.topnav', bar) || CD.h('nav', { class: 'topnav', 'aria-label': 'Consoles' });
      var first = nav.firstChild;
      CONSOLES.forEach(function (c) { nav.insertBefore(CD.h('a', { href: c[0], text: c[1] }), first); });
      CD.$$('a', nav).forEach(function (a) {
        if (a.getAttribute('href') === here) a.setAttribute('aria-current', 'page');
      });
      var right = CD.$('.right', bar) || CD.h('div', { class: 'right' });
      right.appendChild(CD.h('span', { class: 'who' }));
      right.appendChild(CD.h('button', { id: 'signout', class: 'btn ghost small', type: 'button', hidden: true, text: 'Sign out' }));
      bar.insertBefore(brand, bar.firstChild);
      bar.insertBefore(nav, brand.nextSibling);
      bar.appendChild(right);
    }
    var card = CD.$('#signin');
    if (card && !CD.$('form', card)) {
      card.appendChild(CD.h('form', null, [
        CD.h('div', null, [
          CD.h('label', { class: 'field', for: 'token', text: 'Access token' }),
          CD.h('input', { id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true })
        ]),
        CD.h('p', { id: 'signin-error', class: 'notice bad', role: 'alert', hidden: true }),
        CD.h('button', { class: 'btn primary', type: 'submit', text: 'Sign in' })
      ]));
    }
  }
  build_chrome();

  window.CD = CD;
})();
