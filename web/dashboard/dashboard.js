/* caredesk dashboard: live queue and agents, today's and the last 7 days'
 * numbers, and simple SVG charts (no library). Polls GET /api/stats: once for
 * today, once for the last 7 days and once per day for the daily chart (see
 * docs/web.md for the fields it reads). */
(function () {
  'use strict';
  var CD = window.CD, h = CD.h, $ = CD.$, s = CD.svg;
  var LIVE_MS = 5000, PERIOD_MS = 60000;
  var live_timer = 0, period_timer = 0;

  /* ---------- time windows (local days, epoch seconds) ---------- */
  function midnight(days_ago) {
    var d = new Date();
    d.setHours(0, 0, 0, 0);
    d.setDate(d.getDate() - days_ago);
    return Math.floor(d.getTime() / 1000);
  }
  function stats(since, until) {
    return CD.api('/api/stats?since=' + since + '&until=' + until);
  }

  /* ---------- reading the stats object tolerantly ---------- */
  function num(o, names) {
    for (var i = 0; i < names.length; i++) {
      var v = o && o[names[i]];
      if (typeof v === 'number' && isFinite(v)) return v;
    }
    return null;
  }
  function counts(x) {
    if (!x) return [];
    if (Array.isArray(x)) {
      return x.map(function (e) {
        if (typeof e === 'string') return { name: e, count: null };
        return { name: e.name || e.driver || e.intent || e.disposition || e.queue || e.text || e.question || e.key || e.label || '?',
          count: num(e, ['count', 'n', 'value', 'total']) };
      });
    }
    return Object.keys(x).map(function (k) { return { name: k, count: x[k] }; })
      .sort(function (a, b) { return b.count - a.count; });
  }
  function period(o) {
    o = o || {};
    var p = o.period || o;
    return {
      conversations: num(p, ['conversations', 'n_conversations']),
      bot_resolved: num(p, ['bot_resolved', 'n_bot_resolved', 'deflected']),
      handoffs: num(p, ['handoffs', 'n_handoffs', 'escalated']),
      deflection_rate: num(p, ['deflection_rate']),
      escalation_rate: num(p, ['escalation_rate']),
      pickup_within_target: num(p, ['pickup_within_target', 'pickup_within_target_rate']),
      median_wait_s: num(p, ['median_wait_s']),
      csat: num(p, ['csat']),
      ratings: num(p, ['ratings', 'n_ratings']),
      drivers: counts(p.top_drivers),
      unanswered: counts(p.unanswered || p.top_unanswered || p.questions_unanswered),
      by_queue: counts(p.handoffs_by_queue),
      fcr: num(p.fcr, ['rate']),
      aht_s: p.aht && p.aht.n ? num(p, ['aht_s']) : null,
      nps: num(p.nps, ['score']),
      qa_score: num(p, ['qa_score']),
      sla: Array.isArray(p.sla) ? p.sla : []
    };
  }

  /* ---------- live ---------- */
  function refresh_live() {
    return stats(midnight(0), Math.floor(Date.now() / 1000) + 1).then(function (r) {
      $('#load-error').hidden = true;
      render_live(r.live || r.now || r);
      render_sla_live(Array.isArray(r.sla) ? r.sla : null);
      render_period(period(r.today || r), 'today');
      $('#updated').textContent = 'Updated ' + new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    }, fail);
  }
  function fail(e) {
    if (e && e.status === 401) return;
    var el = $('#load-error');
    el.textContent = e && e.status === 403 ? 'This account may not see the dashboard (needs the admin role).' :
      'Could not load the numbers: ' + (e && e.message || 'no answer from the server') + '. Retrying.';
    el.hidden = false;
  }
  function tile(id, value, sub, cls) {
    var t = $(id);
    t.querySelector('.v').textContent = value;
    t.querySelector('.s').textContent = sub || '';
    t.className = 'card tile' + (cls ? ' ' + cls : '');
  }
  function render_live(l) {
    var waiting = num(l, ['waiting', 'queue_length', 'waiting_chats']);
    var longest = num(l, ['longest_wait_s', 'oldest_wait_s']);
    var target = num(l, ['pickup_target_s']) || 60;
    var avail = num(l, ['agents_available']);
    var busy = num(l, ['agents_busy']);
    tile('#t-waiting', waiting == null ? '–' : String(waiting), waiting ? 'customers waiting for a person' : 'nobody waiting',
      waiting > 0 && longest > target ? 'bad' : '');
    tile('#t-longest', longest == null ? '–' : CD.dur(longest), 'pickup target ' + CD.dur(target),
      longest > target ? 'bad' : longest != null ? 'ok' : '');
    var g = $('#t-longest .gauge');
    var scale = Math.max(target * 2, longest || 0);
    g.querySelector('span').style.width = Math.min(100, ((longest || 0) / scale) * 100) + '%';
    g.querySelector('i').style.left = (target / scale) * 100 + '%';
    $('#t-longest').setAttribute('aria-label', 'Longest wait ' + (longest == null ? 'unknown' : CD.dur(longest)) +
      ', target ' + CD.dur(target) + (longest > target ? ', over target' : ''));
    var agents = Array.isArray(l.agents) ? l.agents : [];
    var names = function (st) {
      return agents.filter(function (a) { return a.status === st || (st === 'available' ? a.available && !a.chats : a.chats > 0); })
        .map(function (a) { return a.name; }).slice(0, 4).join(', ');
    };
    tile('#t-available', avail == null ? '–' : String(avail), names('available') || 'signed in, free for chats');
    tile('#t-busy', busy == null ? '–' : String(busy), names('busy') || 'in chats now');
    /* How much of what customers ask is outside every intent: what to write intents and
     * articles for next (the unanswered questions below are the examples). */
    var share = num(l, ['out_of_scope_share']);
    var asked = num(l, ['out_of_scope_questions']);
    $('#oos-share').textContent = share == null ? ''
      : l.out_of_scope_measured ? 'About ' + CD.pct(share) + ' of the last ' + (asked || 0).toLocaleString() +
        ' questions are about something no intent covers.'
      : 'The share of questions no intent covers is measured after 100 questions (' + (asked || 0) + ' so far).';
  }

  /* SLA tiles: chats open now past their queue's target, or at 80% of it. */
  function render_sla_live(sla) {
    var sum = function (k) {
      return sla.reduce(function (n, q) { return n + (q.first_response[k] || 0) + (q.resolution[k] || 0); }, 0);
    };
    var which = function (k) {
      return sla.filter(function (q) { return q.first_response[k] || q.resolution[k]; })
        .map(function (q) { return q.queue; }).slice(0, 4).join(', ');
    };
    if (!sla) { tile('#t-breached', '–'); tile('#t-risk', '–'); return; }
    var b = sum('breached'), r = sum('at_risk');
    tile('#t-breached', String(b), b ? which('breached') : 'every open chat within target', b ? 'bad' : 'ok');
    tile('#t-risk', String(r), r ? which('at_risk') : 'none near a target', r ? 'bad' : '');
  }

  /* ---------- periods ---------- */
  var periods = { today: null, week: null };
  var KPIS = [
    { key: 'conversations', label: 'Conversations', fmt: function (v) { return v == null ? '–' : v.toLocaleString(); } },
    { key: 'deflection_rate', label: 'Deflection rate', fmt: CD.pct, hint: 'resolved by the bot', good: 'up' },
    { key: 'escalation_rate', label: 'Escalation rate', fmt: CD.pct, hint: 'handed to a person', good: 'down' },
    { key: 'pickup_within_target', label: 'Picked up in target', fmt: CD.pct, good: 'up' },
    { key: 'median_wait_s', label: 'Median wait', fmt: function (v) { return v == null ? '–' : CD.dur(v); }, good: 'down' },
    { key: 'csat', label: 'CSAT', fmt: function (v) { return v == null || v === 0 ? '–' : v.toFixed(1) + ' / 5'; }, good: 'up' },
    { key: 'fcr', label: 'First-contact resolution', fmt: CD.pct, good: 'up' },
    { key: 'aht_s', label: 'Handle time', fmt: function (v) { return v == null ? '–' : CD.dur(Math.round(v)); }, good: 'down' },
    { key: 'nps', label: 'NPS', fmt: function (v) { return v == null ? '–' : String(Math.round(v)); }, good: 'up' },
    { key: 'qa_score', label: 'QA score', fmt: function (v) { return v == null ? '–' : Math.round(v) + '%'; }, good: 'up' }
  ];
  function render_period(p, which) {
    periods[which] = p;
    var box = CD.clear($('#kpis'));
    var t = periods.today || {}, w = periods.week || {};
    KPIS.forEach(function (k) {
      var sub = h('span', { class: 's' }, ['Last 7 days: ', h('b', { text: k.fmt(w[k.key]) })]);
      if (k.key === 'csat' && t.ratings != null) {
        sub.appendChild(document.createTextNode(' · ' + t.ratings + (t.ratings === 1 ? ' rating' : ' ratings') + ' today'));
      }
      box.appendChild(h('div', { class: 'card tile', 'data-kpi': k.key }, [
        h('span', { class: 'k', text: k.label + ' today' }),
        h('span', { class: 'v', text: k.fmt(t[k.key]) }),
        sub
      ]));
    });
    if (which === 'week') render_week(p);
  }
  function refresh_period() {
    var now = Math.floor(Date.now() / 1000) + 1;
    var week = stats(midnight(6), now).then(function (r) {
      render_period(period(r.week || r.last_7_days || r), 'week');
      return r;
    }, fail);
    var days = [];
    for (var i = 6; i >= 0; i--) {
      days.push((function (ago) {
        return stats(midnight(ago), ago === 0 ? now : midnight(ago - 1)).then(function (r) {
          var p = period(r);
          return { day: midnight(ago), bot: p.bot_resolved, human: p.handoffs, total: p.conversations };
        }, function () { return { day: midnight(ago), bot: null, human: null, total: null }; });
      })(i));
    }
    Promise.all(days).then(render_daily);
    return week;
  }

  /* ---------- charts ---------- */
  function render_daily(days) {
    var box = CD.clear($('#daily'));
    var W = Math.max(320, Math.min(720, box.clientWidth || 640)), H = 240, L = 36, B = 28, T = 14, R = 8;
    var max = Math.max.apply(null, days.map(function (d) { return d.total || 0; }).concat([4]));
    var step = nice_step(max / 4);
    var top = Math.ceil(max / step) * step;
    var svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'Conversations per day for the last 7 days: ' + days.map(function (d) {
        return new Date(d.day * 1000).toLocaleDateString([], { weekday: 'short' }) + ' ' + (d.total || 0);
      }).join(', ') });
    for (var v = 0; v <= top; v += step) {
      var y = T + (H - T - B) * (1 - v / top);
      svg.appendChild(s('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
      svg.appendChild(s('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, [v]));
    }
    var bw = (W - L - R) / days.length;
    days.forEach(function (d, i) {
      var x = L + i * bw + bw * 0.2, w = bw * 0.6;
      var total = d.total || 0;
      var bot = d.bot != null ? d.bot : 0, human = d.human != null ? d.human : 0;
      var other = Math.max(0, total - bot - human);
      var yb = H - B;
      [[bot, 'bot'], [human, 'human'], [other, 'other']].forEach(function (p) {
        if (!p[0]) return;
        var hh = (H - T - B) * p[0] / top;
        yb -= hh;
        svg.appendChild(s('rect', { class: p[1], x: x, y: yb, width: w, height: hh, rx: 2 }, [
          s('title', {}, [p[0] + (p[1] === 'bot' ? ' resolved by the bot' : p[1] === 'human' ? ' handed to a person' : ' other')])]));
      });
      if (total) svg.appendChild(s('text', { x: x + w / 2, y: yb - 4, 'text-anchor': 'middle' }, [total]));
      svg.appendChild(s('text', { x: x + w / 2, y: H - 8, 'text-anchor': 'middle' },
        [i === days.length - 1 ? 'Today' : new Date(d.day * 1000).toLocaleDateString([], { weekday: 'short' })]));
    });
    box.appendChild(svg);
  }
  function nice_step(x) {
    var p = Math.pow(10, Math.floor(Math.log10(Math.max(1, x))));
    var m = x / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function render_week(p) {
    /* donut: bot-resolved vs handed off */
    var box = CD.clear($('#donut'));
    var total = p.conversations || 0;
    var bot = p.bot_resolved != null ? p.bot_resolved : Math.round((p.deflection_rate || 0) * total);
    var human = p.handoffs != null ? p.handoffs : Math.round((p.escalation_rate || 0) * total);
    var other = Math.max(0, total - bot - human);
    var r = 60, c = 2 * Math.PI * r;
    var svg = s('svg', { viewBox: '0 0 170 170', role: 'img',
      'aria-label': 'Last 7 days: ' + bot + ' resolved by the bot, ' + human + ' handed to a person' + (other ? ', ' + other + ' other' : '') });
    svg.appendChild(s('circle', { cx: 85, cy: 85, r: r, fill: 'none', stroke: '#e6eaf0', 'stroke-width': 22 }));
    var off = 0;
    [[bot, '#2453c7'], [human, '#e4a11b'], [other, '#9aa5b4']].forEach(function (seg) {
      if (!total || !seg[0]) return;
      var len = c * seg[0] / total;
      svg.appendChild(s('circle', { cx: 85, cy: 85, r: r, fill: 'none', stroke: seg[1], 'stroke-width': 22,
        'stroke-dasharray': len + ' ' + (c - len), 'stroke-dashoffset': -off, transform: 'rotate(-90 85 85)' }));
      off += len;
    });
    svg.appendChild(s('text', { x: 85, y: 82, 'text-anchor': 'middle', 'font-size': 24, 'font-weight': 700, fill: '#18202b' },
      [total ? CD.pct(p.deflection_rate != null ? p.deflection_rate : bot / total) : '–']));
    svg.appendChild(s('text', { x: 85, y: 102, 'text-anchor': 'middle', 'font-size': 12, fill: '#566172' }, ['by the bot']));
    box.appendChild(h('div', { class: 'donut-wrap' }, [svg, h('dl', null, [
      h('dt', null, [h('i', { class: 'sw bot' }), ' Resolved by the bot']), h('dd', { text: String(bot) }),
      h('dt', null, [h('i', { class: 'sw human' }), ' Handed to a person']), h('dd', { text: String(human) }),
      h('dt', { text: 'Conversations' }), h('dd', { text: String(total) }),
      h('dt', { text: 'Ratings' }), h('dd', { text: p.ratings == null ? '–' : String(p.ratings) })
    ])]));

    render_sla_table(p.sla);
    hbars('#drivers', p.drivers.slice(0, 10), 'No contact drivers recorded yet.', true);
    hbars('#queues', p.by_queue, 'No handoffs in the last 7 days.', false);
    $('#queues-card').hidden = !p.by_queue.length;

    var ub = CD.clear($('#unanswered'));
    if (!p.unanswered.length) { ub.appendChild(h('p', { class: 'empty', text: 'Every question found an answer. Nice.' })); return; }
    ub.appendChild(CD.table(['Question', { text: 'Asked', num: 1 }], p.unanswered.slice(0, 10).map(function (u) {
      return h('tr', null, [h('td', { text: u.name }), h('td', { class: 'num', text: u.count == null ? '' : String(u.count) })]);
    })));
  }
  function render_sla_table(sla) {
    var box = CD.clear($('#sla'));
    var used = sla.filter(function (q) { return q.first_response.n || q.resolution.n || q.first_response.breached || q.resolution.breached; });
    if (!used.length) { box.appendChild(h('p', { class: 'empty', text: 'No handoffs in the last 7 days.' })); return; }
    var share = function (r) { return r.n ? CD.pct(r.met_share) + ' of ' + r.n : '–'; };
    box.appendChild(CD.table(['Queue', { text: 'First response target', num: 1 }, { text: 'Met', num: 1 },
      { text: 'Resolution target', num: 1 }, { text: 'Met', num: 1 }, { text: 'Breached now', num: 1 }],
    used.map(function (q) {
      return h('tr', null, [
        h('th', { scope: 'row', text: q.queue }),
        h('td', { class: 'num', text: CD.dur(q.first_response.target_s) }),
        h('td', { class: 'num', text: share(q.first_response) }),
        h('td', { class: 'num', text: CD.dur(q.resolution.target_s) }),
        h('td', { class: 'num', text: share(q.resolution) }),
        h('td', { class: 'num' + (q.first_response.breached + q.resolution.breached ? ' bad' : ''),
          text: String(q.first_response.breached + q.resolution.breached) })
      ]);
    })));
  }
  function hbars(sel, items, empty, humanize) {
    var box = CD.clear($(sel));
    if (!items.length) { box.appendChild(h('p', { class: 'empty', text: empty })); return; }
    var max = Math.max.apply(null, items.map(function (x) { return x.count || 0; }).concat([1]));
    var ul = h('ul', { class: 'hbar' });
    items.forEach(function (x) {
      ul.appendChild(h('li', null, [
        h('span', { class: 'name', title: x.name, text: humanize ? CD.humanize(x.name) : x.name }),
        h('span', { class: 'bar', 'aria-hidden': 'true' }, [h('span', { style: 'width:' + ((x.count || 0) / max * 100) + '%' })]),
        h('span', { class: 'n', text: x.count == null ? '' : String(x.count) })
      ]));
    });
    box.appendChild(ul);
  }

  CD.require_signin({
    role: 'admin',
    verify: function (tok) {
      return CD.api('/api/stats?since=' + midnight(0) + '&until=' + (Math.floor(Date.now() / 1000) + 1), { token: tok })
        .then(function () {
          return CD.api('/api/me', { token: tok }).catch(function () { return {}; });
        });
    },
    onready: function () {
      refresh_live();
      refresh_period();
      clearInterval(live_timer);
      clearInterval(period_timer);
      live_timer = setInterval(function () { if (!document.hidden) refresh_live(); }, LIVE_MS);
      period_timer = setInterval(function () { if (!document.hidden) refresh_period(); }, PERIOD_MS);
    },
    onsignout: function () { clearInterval(live_timer); clearInterval(period_timer); }
  });
})();
