/* caredesk QA console: supervisors and admins draw the week's sample (per
 * agent, stratified by queue, reproducible from a seed), score conversations
 * against the rubric and compare their scoring in the calibration view;
 * agents see their own audits. REST: /api/qa/... (docs/web.md). */
(function () {
  'use strict';
  var CD = window.CD, h = CD.h, $ = CD.$;
  var me = null, rubric = null, current = null;

  function is_reviewer() { return me && (me.role === 'supervisor' || me.role === 'admin'); }
  function fail(e) {
    var el = $('#load-error');
    el.textContent = (e && e.message) || 'no answer from the server';
    el.hidden = false;
  }
  function week() { return $('#week').value; }
  function pct(v) { return v == null ? '–' : (Math.round(v * 10) / 10) + '%'; }

  /* ---------- tabs ---------- */
  function show(tab) {
    CD.$$('.tabs [role=tab]').forEach(function (b) {
      var on = b.id === 'tab-' + tab;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
      $('#' + b.getAttribute('aria-controls')).hidden = !on;
    });
    $('#draw').hidden = $('#seed').hidden = $('label[for=seed]').hidden = tab !== 'sample';
    refresh(tab);
  }
  function active() {
    var b = $('.tabs [aria-selected=true]');
    return b ? b.id.slice(4) : 'sample';
  }
  function refresh(tab) {
    $('#load-error').hidden = true;
    if (tab === 'sample') return load_sample();
    if (tab === 'calibration') return load_calibration();
    if (tab === 'mine') return load_mine();
    return load_scores();
  }

  /* ---------- sample and review ---------- */
  function render_sample(r) {
    var box = CD.clear($('#sample'));
    $('#sample-seed').textContent = r.seed == null ? '' : 'seed ' + r.seed;
    if (!r.samples.length) {
      box.appendChild(h('p', { class: 'empty', text: r.seed == null ? 'No sample drawn for ' + r.week + ' yet.' :
        'No conversation closed by an agent in ' + r.week + '.' }));
      return;
    }
    box.appendChild(CD.table(['Agent', 'Queue', { text: 'Conversation', num: 1 }, { text: 'Reviews', num: 1 }, ''],
      r.samples.map(function (s) {
        return h('tr', { 'data-conversation': s.conversation }, [
          h('td', { text: s.agent }), h('td', { text: s.queue || '–' }),
          h('td', { class: 'num', text: '#' + s.conversation }),
          h('td', { class: 'num', text: String(s.audits) }),
          h('td', null, [h('button', { class: 'btn small review' + (s.reviewed_by_me ? '' : ' primary'), type: 'button',
            text: s.reviewed_by_me ? 'Review again' : 'Review',
            'aria-label': (s.reviewed_by_me ? 'Review again' : 'Review') + ' conversation ' + s.conversation + ' of ' + s.agent,
            onclick: function () { open_review(s); } })])
        ]);
      })));
  }
  function load_sample() {
    return CD.api('/api/qa/samples?week=' + week()).then(render_sample, fail);
  }
  function draw() {
    var body = { week: week() };
    var seed = $('#seed').value.trim();
    if (seed !== '') body.seed = Number(seed);
    return CD.api('/api/qa/samples', { method: 'POST', body: body }).then(function (r) {
      CD.toast('Drew ' + r.samples.length + (r.samples.length === 1 ? ' conversation' : ' conversations') + ' (' + r.per_agent + ' per agent)');
      render_sample(r);
    }, fail);
  }
  function open_review(s) {
    current = s;
    $('#review').hidden = false;
    $('#review-title').textContent = 'Review #' + s.conversation + ' · ' + s.agent + (s.queue ? ' · ' + s.queue : '');
    $('#audit-result').textContent = '';
    $('#comment').value = '';
    var list = CD.clear($('#transcript'));
    CD.api('/api/conversations/' + s.conversation).then(function (c) {
      (c.messages || []).forEach(function (m) {
        list.appendChild(h('li', null, [h('b', { text: m.sender }), ' ', m.text]));
      });
    }, fail);
    var box = CD.clear($('#criteria'));
    rubric.criteria.forEach(function (c) {
      var opts = [];
      for (var p = 0; p <= rubric.scale; p++) {
        var id = 'c-' + c.id + '-' + p;
        opts.push(h('label', { for: id }, [h('input', { type: 'radio', id: id, name: c.id, value: String(p), required: true }), ' ' + p]));
      }
      box.appendChild(h('fieldset', { class: 'criterion', 'data-criterion': c.id }, [
        h('legend', null, [c.label, c.critical ? h('span', { class: 'critical', text: 'critical' }) : null])
      ].concat(opts)));
    });
    $('#review').scrollIntoView({ block: 'nearest' });
  }
  function save_audit(e) {
    e.preventDefault();
    var scores = {};
    rubric.criteria.forEach(function (c) {
      var on = $('#criteria input[name="' + c.id + '"]:checked');
      if (on) scores[c.id] = Number(on.value);
    });
    var out = $('#audit-result');
    CD.api('/api/qa/audits', { method: 'POST', body: { conversation: current.conversation, scores: scores,
      comment: $('#comment').value } }).then(function (a) {
      out.className = a.passed ? 'pass' : 'fail';
      out.textContent = 'Saved: ' + pct(a.score) + (a.passed ? ', passed' : ', below the pass mark of ' + rubric.pass_mark + '%');
      load_sample();
    }, function (err) {
      out.className = 'fail';
      out.textContent = 'Not saved: ' + err.message;
    });
  }

  /* ---------- calibration ---------- */
  function load_calibration() {
    return CD.api('/api/qa/calibration?week=' + week()).then(function (r) {
      var sum = CD.clear($('#calibration-summary'));
      var box = CD.clear($('#calibration'));
      if (!r.conversations.length) {
        sum.appendChild(h('p', { class: 'empty', text: 'No conversation of ' + r.week + ' was scored by two reviewers or more.' }));
        return;
      }
      sum.appendChild(CD.table(['Criterion', { text: 'Conversations', num: 1 }, { text: 'Mean spread (points)', num: 1 }],
        r.criteria.map(function (c) {
          return h('tr', { 'data-criterion': c.id }, [h('th', { scope: 'row', text: c.label }),
            h('td', { class: 'num', text: String(c.conversations) }),
            h('td', { class: 'num' + (c.mean_spread >= r.scale / 2 ? ' spread-high' : ''), text: c.mean_spread.toFixed(2) })]);
        })));
      r.conversations.forEach(function (c) {
        var names = c.reviews.map(function (a) { return a.reviewer; });
        box.appendChild(h('h3', { class: 'body', text: '#' + c.conversation + ' · ' + c.agent + ' · scores ' +
          c.reviews.map(function (a) { return pct(a.score); }).join(' / ') + ' (spread ' + (Math.round(c.score_spread * 10) / 10) + ' pts)' }));
        box.appendChild(CD.table(['Criterion'].concat(names).concat([{ text: 'Spread', num: 1 }]), c.criteria.map(function (k) {
          return h('tr', { 'data-criterion': k.id }, [h('th', { scope: 'row', text: k.label })].concat(k.points.map(function (p) {
            return h('td', { class: 'num', text: p == null ? '–' : String(p) });
          })).concat([h('td', { class: 'num spread' + (k.spread >= r.scale / 2 ? ' spread-high' : ''), text: String(k.spread) })]));
        })));
      });
    }, fail);
  }

  /* ---------- my audits, scores ---------- */
  function load_mine() {
    return CD.api('/api/qa/audits').then(function (r) {
      var box = CD.clear($('#mine'));
      if (!r.audits.length) { box.appendChild(h('p', { class: 'empty', text: 'None of your conversations has been audited yet.' })); return; }
      box.appendChild(CD.table([{ text: 'Conversation', num: 1 }, 'Reviewer', { text: 'Score', num: 1 }, 'Result', 'Comment'],
        r.audits.map(function (a) {
          return h('tr', { 'data-audit': a.id }, [h('td', { class: 'num', text: '#' + a.conversation }),
            h('td', { text: a.reviewer }), h('td', { class: 'num', text: pct(a.score) }),
            h('td', { class: a.passed ? 'pass' : 'fail', text: a.passed ? 'Passed' : 'Below the mark' }),
            h('td', { text: a.comment || '' })]);
        })));
    }, fail);
  }
  function load_scores() {
    return CD.api('/api/qa/scores?weeks=8').then(function (r) {
      var box = CD.clear($('#scores'));
      if (!r.agents.length) { box.appendChild(h('p', { class: 'empty', text: 'No audits in the last 8 weeks.' })); return; }
      var weeks = [];
      r.agents.forEach(function (a) { a.weeks.forEach(function (w) { if (weeks.indexOf(w.week) < 0) weeks.push(w.week); }); });
      weeks.sort();
      box.appendChild(CD.table(['Agent'].concat(weeks.map(function (w) { return { text: w, num: 1 }; })), r.agents.map(function (a) {
        return h('tr', null, [h('th', { scope: 'row', text: a.agent })].concat(weeks.map(function (w) {
          var x = a.weeks.filter(function (y) { return y.week === w; })[0];
          return h('td', { class: 'num', text: x ? pct(x.score) + ' (' + x.n + ')' : '–' });
        })));
      })));
    }, fail);
  }

  function start(info) {
    me = info;
    CD.api('/api/qa/rubric').then(function (r) {
      rubric = r;
      CD.$$('.tabs [role=tab]').forEach(function (b) {
        var need = b.getAttribute('data-role');
        b.hidden = need === 'reviewer' ? !is_reviewer() : need === 'agent' ? is_reviewer() : false;
        b.addEventListener('click', function () { show(b.id.slice(4)); });
      });
      $('#week').value = CD.iso_week(new Date());
      $('#week').addEventListener('change', function () { if (week()) refresh(active()); });
      $('#week-form').addEventListener('submit', function (e) { e.preventDefault(); refresh(active()); });
      $('#draw').addEventListener('click', draw);
      $('#audit-form').addEventListener('submit', save_audit);
      show(is_reviewer() ? 'sample' : 'mine');
    }, function (e) {
      if (e.status === 503) { $('#qa-off').hidden = false; return; }
      fail(e);
    });
  }

  CD.require_signin({
    role: 'supervisor',
    verify: function (tok) { return CD.api('/api/me', { token: tok }); },
    onready: start
  });
})();
