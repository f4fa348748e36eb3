/* caredesk weekly report page: GET /api/report?week=YYYY-Www (docs/metrics.md,
 * docs/web.md) shown as tiles with the change against the previous week, SVG
 * charts of the service levels and the top drivers, and tables; printable,
 * and downloadable as Markdown, CSV or JSON. */
(function () {
  'use strict';
  var CD = window.CD, h = CD.h, $ = CD.$, s = CD.svg;

  function fmt(unit, v, is_change) {
    if (v == null) return '–';
    var sign = is_change && v > 0 ? '+' : '';
    switch (unit) {
    case 'share': return is_change ? sign + (Math.round(v * 1000) / 10) + ' pts' : CD.pct(v);
    case 'percent': return is_change ? sign + (Math.round(v * 10) / 10) + ' pts' : Math.round(v) + '%';
    case 'seconds': return is_change ? sign + Math.round(v) + ' s' : CD.dur(v);
    case 'rating': return is_change ? sign + v.toFixed(2) : v.toFixed(2) + ' / 5';
    default: return sign + Math.round(v).toLocaleString();
    }
  }
  /* Lower is better for these. */
  var LOWER_BETTER = { aht_s: 1, escalation_rate: 1 };

  function render_kpis(kpis) {
    var box = CD.clear($('#kpis'));
    kpis.forEach(function (k) {
      var trend = 'flat', arrow = '→';
      if (k.change != null && k.change !== 0) {
        var better = (k.change > 0) !== !!LOWER_BETTER[k.key];
        trend = better ? 'up' : 'down';
        arrow = k.change > 0 ? '↑' : '↓';
      }
      box.appendChild(h('div', { class: 'card tile', 'data-kpi': k.key }, [
        h('span', { class: 'k', text: k.label }),
        h('span', { class: 'v', text: fmt(k.unit, k.value) }),
        h('span', { class: 's' }, [
          k.change == null ? 'previous week: ' + fmt(k.unit, k.previous) :
            h('span', { class: 'trend ' + trend, text: arrow + ' ' + fmt(k.unit, k.change, true) }),
          k.change == null ? '' : ' vs ' + fmt(k.unit, k.previous)
        ])
      ]));
    });
  }

  /* Met share per queue and target: one bar per queue and kind. */
  function render_sla(levels, backlog) {
    var used = levels.filter(function (q) { return q.first_response_n || q.resolution_n; });
    var chart = CD.clear($('#sla-chart'));
    if (!used.length) {
      chart.appendChild(h('p', { class: 'empty', text: 'No handoffs this week.' }));
    } else {
      var W = 640, row = 22, L = 170, R = 56, T = 8;
      var rows = [];
      used.forEach(function (q) {
        rows.push({ label: q.queue + ' · first response', v: q.first_response_met_share, n: q.first_response_n });
        rows.push({ label: q.queue + ' · resolution', v: q.resolution_met_share, n: q.resolution_n });
      });
      var H = T * 2 + rows.length * row;
      var svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
        'aria-label': 'Share of chats within target: ' + rows.map(function (r) {
          return r.label + ' ' + (r.v == null ? 'none' : CD.pct(r.v));
        }).join(', ') });
      rows.forEach(function (r, i) {
        var y = T + i * row, w = W - L - R;
        svg.appendChild(s('text', { x: L - 8, y: y + 15, 'text-anchor': 'end' }, [r.label]));
        svg.appendChild(s('rect', { class: 'missed', x: L, y: y + 4, width: w, height: 14, rx: 3 }));
        if (r.v != null) {
          svg.appendChild(s('rect', { class: 'met', x: L, y: y + 4, width: w * r.v, height: 14, rx: 3 },
            [s('title', {}, [CD.pct(r.v) + ' of ' + r.n + ' within target'])]));
        }
        svg.appendChild(s('text', { x: W - R + 6, y: y + 15 }, [r.v == null ? '–' : CD.pct(r.v)]));
      });
      chart.appendChild(svg);
    }
    CD.clear($('#sla-table')).appendChild(CD.table(['Queue', { text: 'First response target', num: 1 },
      { text: 'Met', num: 1 }, { text: 'Resolution target', num: 1 }, { text: 'Met', num: 1 }], levels.map(function (q) {
      return h('tr', null, [
        h('th', { scope: 'row', text: q.queue }),
        h('td', { class: 'num', text: CD.dur(q.first_response_target_s) }),
        h('td', { class: 'num', text: q.first_response_n ? CD.pct(q.first_response_met_share) + ' of ' + q.first_response_n : '–' }),
        h('td', { class: 'num', text: CD.dur(q.resolution_target_s) }),
        h('td', { class: 'num', text: q.resolution_n ? CD.pct(q.resolution_met_share) + ' of ' + q.resolution_n : '–' })
      ]);
    })));
    $('#backlog').textContent = 'Backlog: ' + backlog.open_handoffs + ' open handoffs at the end of the week (' +
      backlog.previous + ' at its start).';
  }

  /* This week's and last week's contacts per driver, side by side. */
  function render_drivers(drivers) {
    var chart = CD.clear($('#drivers-chart'));
    var table = CD.clear($('#drivers-table'));
    if (!drivers.length) { chart.appendChild(h('p', { class: 'empty', text: 'No contact drivers this week.' })); return; }
    var W = 640, row = 30, L = 170, R = 40, T = 6;
    var max = Math.max.apply(null, drivers.map(function (d) { return Math.max(d.count, d.previous); }).concat([1]));
    var svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + (T * 2 + drivers.length * row), role: 'img',
      'aria-label': 'Contacts per driver, this week and the previous week: ' + drivers.map(function (d) {
        return CD.humanize(d.name) + ' ' + d.count + ' (previous ' + d.previous + ')';
      }).join(', ') });
    drivers.forEach(function (d, i) {
      var y = T + i * row, w = W - L - R;
      svg.appendChild(s('text', { x: L - 8, y: y + 17, 'text-anchor': 'end' }, [CD.humanize(d.name)]));
      svg.appendChild(s('rect', { class: 'bot', x: L, y: y + 3, width: Math.max(1, w * d.count / max), height: 12, rx: 2 },
        [s('title', {}, [d.count + ' this week'])]));
      svg.appendChild(s('rect', { class: 'prev', x: L, y: y + 16, width: Math.max(1, w * d.previous / max), height: 8, rx: 2 },
        [s('title', {}, [d.previous + ' the previous week'])]));
      svg.appendChild(s('text', { x: L + w * d.count / max + 6, y: y + 14 }, [d.count]));
    });
    chart.appendChild(svg);
    table.appendChild(CD.table([{ text: '#', num: 1 }, 'Driver', { text: 'Contacts', num: 1 }, { text: 'Change', num: 1 },
      { text: 'Escalation rate', num: 1 }, { text: 'CSAT', num: 1 }], drivers.map(function (d, i) {
      return h('tr', null, [
        h('td', { class: 'num', text: String(i + 1) }),
        h('th', { scope: 'row', text: CD.humanize(d.name) }),
        h('td', { class: 'num', text: String(d.count) }),
        h('td', { class: 'num', text: (d.change > 0 ? '+' : '') + d.change }),
        h('td', { class: 'num', text: CD.pct(d.escalation_rate) }),
        h('td', { class: 'num', text: d.csat == null ? '–' : d.csat.toFixed(1) + ' / 5' })
      ]);
    })));
  }

  function render_unanswered(list) {
    var box = CD.clear($('#unanswered'));
    if (!list.length) { box.appendChild(h('p', { class: 'empty', text: 'Every question found an answer.' })); return; }
    box.appendChild(CD.table(['Question', { text: 'Asked', num: 1 }], list.map(function (u) {
      return h('tr', null, [h('td', { text: u.question }), h('td', { class: 'num', text: String(u.count) })]);
    })));
  }

  function render_nps(nps) {
    var box = CD.clear($('#nps'));
    if (!nps) { box.appendChild(h('p', { class: 'empty', text: 'No NPS answers this week.' })); return; }
    box.appendChild(h('p', { text: 'NPS ' + Math.round(nps.score) + ' from ' + nps.n + (nps.n === 1 ? ' answer' : ' answers') +
      ' (' + nps.promoters + ' promoters, ' + nps.passives + ' passives, ' + nps.detractors + ' detractors).' }));
    (nps.by_driver || []).forEach(function (g) {
      if (!g.verbatims || !g.verbatims.length) return;
      box.appendChild(h('h3', { class: 'verbatim-driver', text: CD.humanize(g.name) + ' · NPS ' + Math.round(g.score) + ' (' + g.n + ')' }));
      box.appendChild(h('ul', { class: 'verbatims' }, g.verbatims.map(function (v) {
        return h('li', null, [h('b', { text: v.score + ' ' }), v.comment]);
      })));
    });
  }

  function load(week) {
    return CD.api('/api/report?week=' + encodeURIComponent(week)).then(function (r) {
      $('#load-error').hidden = true;
      $('#report-title').textContent = 'Weekly report ' + r.week;
      document.title = 'Weekly report ' + r.week + ' · caredesk';
      var last = new Date((r.until - 43200) * 1000);
      $('#report-range').textContent = new Date(r.since * 1000).toLocaleDateString([], { dateStyle: 'full' }) +
        ' to ' + last.toLocaleDateString([], { dateStyle: 'full' }) + ', compared with ' + r.previous_week + '.';
      render_kpis(r.kpis || []);
      render_sla(r.service_levels || [], r.backlog || { open_handoffs: 0, previous: 0 });
      render_drivers(r.drivers || []);
      render_unanswered(r.unanswered || []);
      render_nps(r.nps);
    }, function (e) {
      var el = $('#load-error');
      el.textContent = 'Could not load the report: ' + (e && e.message || 'no answer from the server') + '.';
      el.hidden = false;
    });
  }

  function download(format) {
    var week = $('#week').value;
    fetch('/api/report?week=' + encodeURIComponent(week) + '&format=' + format,
      { headers: { Authorization: 'Bearer ' + CD.token() } }).then(function (res) {
      if (!res.ok) throw new Error(res.status + ' ' + res.statusText);
      return res.blob();
    }).then(function (blob) {
      var a = h('a', { href: URL.createObjectURL(blob), download: 'caredesk-' + week + '.' + format });
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }).catch(function (e) {
      var el = $('#load-error');
      el.textContent = 'Could not download the report: ' + e.message + '.';
      el.hidden = false;
    });
  }

  CD.require_signin({
    role: 'admin',
    verify: function (tok) {
      return CD.api('/api/report?week=' + CD.iso_week(new Date()), { token: tok }).then(function () {
        return CD.api('/api/me', { token: tok }).catch(function () { return {}; });
      });
    },
    onready: function () {
      var input = $('#week');
      var wanted = (location.hash.match(/^#(\d{4}-W\d{2})$/) || [])[1];
      input.value = wanted || CD.iso_week(new Date(Date.now() - 7 * 86400000));
      $('#week-form').addEventListener('submit', function (e) {
        e.preventDefault();
        if (input.value) { history.replaceState(null, '', '#' + input.value); load(input.value); }
      });
      $('#print').addEventListener('click', function () { window.print(); });
      CD.$$('.downloads a').forEach(function (a) {
        a.addEventListener('click', function (e) { e.preventDefault(); download(a.dataset.format); });
      });
      load(input.value);
    }
  });
})();
