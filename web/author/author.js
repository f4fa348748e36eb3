/* caredesk author console: list, search, create, edit (Markdown with live
 * preview), publish, unpublish and delete articles, see revisions, test a
 * question against the bot, and teach the KB the questions nothing answered.
 * Every route it calls is listed in docs/web.md. */
(function () {
  'use strict';
  var CD = window.CD, h = CD.h, $ = CD.$;

  var articles = [];      /* summaries from GET /api/articles (or search hits) */
  /* Search mode: the server cannot list every article (GET /api/articles
   * answers 400), so the list shows search results for what is typed. */
  var search_mode = false;
  var search_timer = 0;
  var current = null;     /* the article being edited (full), or {is_new: true} */
  var dirty = false;

  /* ---------- tabs ---------- */
  var tabs = CD.$$('.tabs [role=tab]');
  function show_tab(tab) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $('#' + t.getAttribute('aria-controls')).hidden = !on;
    });
    if (tab.id === 'tab-unanswered') load_unanswered();
    if (tab.id === 'tab-intents') load_intents_report();
    if (tab.id === 'tab-test') $('#ask-q').focus();
    history.replaceState(null, '', '#' + tab.id.slice(4));
  }
  tabs.forEach(function (t, i) {
    t.addEventListener('click', function () { show_tab(t); });
    t.addEventListener('keydown', function (e) {
      var d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      var n = tabs[(i + d + tabs.length) % tabs.length];
      n.focus();
      show_tab(n);
    });
  });

  /* ---------- article shape helpers ---------- */
  function status_of(a) {
    if (a.status) return a.status;
    if (a.is_published != null) return a.is_published ? 'published' : 'draft';
    if (a.published != null) return a.published ? 'published' : 'draft';
    return 'published';
  }
  function updated_of(a) { return a.updated_s || a.updated || a.updated_at || a.modified; }
  function list_of(x) {
    if (Array.isArray(x)) return x;
    if (typeof x === 'string') return x.split(/[,\n]/).map(function (s) { return s.trim(); }).filter(Boolean);
    return [];
  }

  /* ---------- list ---------- */
  function load_list(select_id) {
    if (search_mode) return search_list().then(function () { if (select_id) open_article(select_id, true); });
    return CD.api('/api/articles').then(function (r) {
      articles = (r && (r.articles || r.items)) || (Array.isArray(r) ? r : []);
      render_list();
      if (select_id) open_article(select_id, true);
    }, function (e) {
      if (e.status === 400 || e.status === 404 || e.status === 501) {
        search_mode = true;
        return load_list(select_id);
      }
      CD.clear($('#list')).appendChild(h('li', { class: 'notice bad', text: 'Could not load articles: ' + e.message }));
    });
  }
  function search_list() {
    var q = $('#q').value.trim();
    if (!q) {
      render_list();
      return Promise.resolve();
    }
    /* An exact id also finds drafts, which search does not return. */
    var by_id = /^[a-z0-9][a-z0-9_.-]{0,126}$/.test(q) ?
      CD.api('/api/articles/' + encodeURIComponent(q)).catch(function () { return null; }) : Promise.resolve(null);
    return Promise.all([CD.api('/api/search?limit=10&q=' + encodeURIComponent(q)), by_id]).then(function (res) {
      var r = res[0], exact = res[1];
      var hits = (r && (r.hits || r.articles)) || [];
      if (exact && exact.id) {
        hits = [exact].concat(hits.filter(function (x) { return x.id !== exact.id; }));
      }
      articles = hits.map(function (x) {
        return { id: x.id, title: x.title, lang: x.lang, published: x.published != null ? x.published : true,
          status: x.status, updated_s: x.updated_s };
      });
      render_list();
    }, function (e) {
      CD.clear($('#list')).appendChild(h('li', { class: 'notice bad', text: 'Search failed: ' + e.message }));
    });
  }
  function render_list() {
    var q = $('#q').value.trim().toLowerCase();
    var st = $('#status-filter').value;
    var shown = articles.filter(function (a) {
      if (st && status_of(a) !== st) return false;
      if (!q) return true;
      return [a.id, a.title, list_of(a.tags).join(' '), a.lang].join(' ').toLowerCase().indexOf(q) >= 0;
    });
    if (!search_mode) shown.sort(function (x, y) { return String(x.title || x.id).localeCompare(String(y.title || y.id)); });
    var ul = CD.clear($('#list'));
    var n_pub = articles.filter(function (a) { return status_of(a) === 'published'; }).length;
    if (search_mode) {
      shown = articles.filter(function (a) { return !st || status_of(a) === st; });
      $('#list-summary').textContent = q ? shown.length + ' matching articles, best first' :
        'Type words from a title or a question to find articles.';
      if (!q) return;
    } else {
      $('#list-summary').textContent = shown.length + ' of ' + articles.length + ' articles · ' + n_pub + ' published, ' +
        (articles.length - n_pub) + ' drafts';
    }
    if (!shown.length) { ul.appendChild(h('li', { class: 'empty', text: 'No article matches.' })); return; }
    shown.forEach(function (a) {
      var s = status_of(a);
      ul.appendChild(h('li', null, [h('button', {
        type: 'button', 'aria-current': current && current.id === a.id ? 'true' : null,
        'data-id': a.id, onclick: function () { open_article(a.id); }
      }, [
        h('span', { class: 't', text: a.title || a.id }),
        h('span', { class: 'm' }, [
          h('span', { class: 'pill ' + (s === 'published' ? 'ok' : 'warn'), text: s === 'published' ? 'Published' : 'Draft' }),
          h('span', { text: (a.lang || 'en').toUpperCase() }),
          h('span', { class: 'mono', text: a.id }),
          updated_of(a) ? h('span', { text: '· ' + CD.ago(updated_of(a)) }) : null
        ])
      ])]));
    });
  }
  $('#q').addEventListener('input', function () {
    if (!search_mode) { render_list(); return; }
    clearTimeout(search_timer);
    search_timer = setTimeout(search_list, 250);
  });
  $('#status-filter').addEventListener('change', render_list);
  $('#filter').addEventListener('submit', function (e) {
    e.preventDefault();
    if (search_mode) search_list(); else render_list();
  });

  /* ---------- editor ---------- */
  function confirm_discard() {
    return !dirty || window.confirm('You have unsaved changes. Discard them?');
  }
  function open_article(id, force) {
    if (!force && !confirm_discard()) return;
    CD.api('/api/articles/' + encodeURIComponent(id)).then(function (a) {
      current = a.article || a;
      fill_editor(current, false);
      render_list();
      load_revisions(current.id);
    }, function (e) { CD.toast('Could not open the article: ' + e.message, true); });
  }
  function fill_editor(a, is_new) {
    $('#editor-empty').hidden = true;
    $('#editor').hidden = false;
    $('#ed-title').textContent = is_new ? 'New article' : (a.title || a.id);
    $('#f-title').value = a.title || '';
    $('#f-id').value = a.id || '';
    $('#f-id').readOnly = !is_new;
    $('#f-lang').value = a.lang || 'en';
    $('#f-tags').value = list_of(a.tags).join(', ');
    $('#f-questions').value = list_of(a.questions).join('\n');
    $('#f-body').value = a.body || '';
    var s = is_new ? 'draft' : status_of(a);
    $('#ed-status').className = 'pill ' + (s === 'published' ? 'ok' : 'warn');
    $('#ed-status').textContent = is_new ? 'Not saved' : s === 'published' ? 'Published' : 'Draft';
    var rev = a.revision || a.rev;
    $('#ed-meta').textContent = is_new ? 'Saved as a draft until you publish it.' :
      [rev ? 'Revision ' + rev : '', updated_of(a) ? 'updated ' + CD.ago(updated_of(a)) : ''].filter(Boolean).join(' · ');
    $('#publish').hidden = !is_new && s === 'published';
    $('#unpublish').hidden = is_new || s !== 'published';
    $('#delete').hidden = is_new;
    $('#view-page').hidden = is_new;
    $('#view-page').href = '/kb/' + encodeURIComponent(a.id || '');
    $('#ed-error').hidden = true;
    $('#revisions').parentNode.hidden = is_new;
    dirty = false;
    render_preview();
  }
  function render_preview() {
    $('#preview').innerHTML = CD.md($('#f-body').value, 2) || '<p class="muted">Nothing to preview yet.</p>';
  }
  $('#f-body').addEventListener('input', function () { dirty = true; render_preview(); });
  ['#f-title', '#f-id', '#f-lang', '#f-tags', '#f-questions'].forEach(function (s) {
    $(s).addEventListener('input', function () { dirty = true; });
  });
  $('#f-title').addEventListener('input', function () {
    if ($('#f-id').readOnly || $('#f-id').dataset.touched) return;
    $('#f-id').value = this.value.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '')
      .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80);
  });
  $('#f-id').addEventListener('input', function () { this.dataset.touched = '1'; });

  $('#new').addEventListener('click', function () {
    if (!confirm_discard()) return;
    current = { is_new: true };
    $('#f-id').dataset.touched = '';
    fill_editor({ lang: 'en', body: '# Title\n\nWrite the answer first, in one or two sentences.\n\n## Steps\n\n1. First step\n2. Second step\n' }, true);
    CD.clear($('#revisions'));
    render_list();
    $('#f-title').focus();
  });

  function collect(status) {
    return {
      published: status === 'published',
      id: $('#f-id').value.trim(),
      title: $('#f-title').value.trim(),
      lang: $('#f-lang').value,
      tags: list_of($('#f-tags').value),
      questions: $('#f-questions').value.split('\n').map(function (s) { return s.trim(); }).filter(Boolean),
      body: $('#f-body').value,
      status: status
    };
  }
  function show_error(msg) {
    $('#ed-error').textContent = msg;
    $('#ed-error').hidden = false;
  }
  /* Saves the editor; status is 'draft' or 'published' (default: keep). */
  function save(status) {
    var is_new = current && current.is_new;
    var keep = is_new ? 'draft' : status_of(current);
    var a = collect(status || keep);
    if (!a.title) { show_error('The title is empty.'); $('#f-title').focus(); return; }
    if (!/^[a-z0-9][a-z0-9_-]{0,100}$/.test(a.id)) {
      show_error('The id must be lowercase letters, digits, - or _ (for example returns-how-to).');
      $('#f-id').focus();
      return;
    }
    if (!a.body.trim()) { show_error('The text is empty.'); $('#f-body').focus(); return; }
    $('#ed-error').hidden = true;
    var req = is_new ? CD.api('/api/articles', { method: 'POST', body: a }) :
      CD.api('/api/articles/' + encodeURIComponent(a.id), { method: 'PUT', body: a });
    CD.$$('#editor button').forEach(function (b) { b.disabled = true; });
    return req.then(function () {
      dirty = false;
      CD.toast(a.status === 'published' ? (status ? 'Published: customers can find it now.' : 'Saved and live.') : 'Saved as a draft.');
      current = null;
      return load_list(a.id);
    }, function (e) {
      show_error(e.status === 409 ? 'An article with id "' + a.id + '" already exists.' :
        e.status === 403 ? 'Your account may not edit articles (needs the author role).' : 'Not saved: ' + e.message);
    }).then(function () {
      CD.$$('#editor button').forEach(function (b) { b.disabled = false; });
    });
  }
  $('#editor').addEventListener('submit', function (e) { e.preventDefault(); save(null); });
  $('#publish').addEventListener('click', function () { save('published'); });
  $('#unpublish').addEventListener('click', function () { save('draft'); });
  $('#delete').addEventListener('click', function () {
    if (!current || current.is_new) return;
    if (!window.confirm('Delete "' + (current.title || current.id) + '"? Customers will no longer find it. Its revisions are kept.')) return;
    CD.api('/api/articles/' + encodeURIComponent(current.id), { method: 'DELETE' }).then(function () {
      CD.toast('Deleted.');
      current = null;
      dirty = false;
      $('#editor').hidden = true;
      $('#editor-empty').hidden = false;
      load_list();
    }, function (e) { show_error('Not deleted: ' + e.message); });
  });
  window.addEventListener('beforeunload', function (e) {
    if (dirty) { e.preventDefault(); e.returnValue = ''; }
  });

  /* ---------- revisions ---------- */
  function load_revisions(id) {
    var ol = CD.clear($('#revisions'));
    ol.appendChild(h('li', { class: 'muted', text: 'Loading…' }));
    CD.api('/api/articles/' + encodeURIComponent(id) + '/revisions').then(function (r) {
      CD.clear(ol);
      var revs = (r && (r.revisions || r.items)) || (Array.isArray(r) ? r : []);
      if (!revs.length) { ol.appendChild(h('li', { class: 'muted', text: 'No earlier revisions.' })); return; }
      revs.sort(function (x, y) { return (y.revision || 0) - (x.revision || 0); });
      revs.forEach(function (rv, i) {
        var box = h('div', { class: 'diffbox md preview', hidden: true });
        ol.appendChild(h('li', null, [
          h('strong', { text: 'Revision ' + (rv.revision != null ? rv.revision : revs.length - i) }),
          i === 0 && rv.revision === (current && current.revision) ? h('span', { class: 'pill ok', text: 'current' }) : null,
          h('span', { class: 'muted', text: CD.when(updated_of(rv) || rv.created_s || rv.at) }),
          rv.author || rv.by ? h('span', { class: 'muted', text: 'by ' + (rv.author || rv.by) }) : null,
          rv.title && current && rv.title !== current.title ? h('span', { class: 'muted', text: '“' + rv.title + '”' }) : null,
          h('span', { class: 'grow' }),
          rv.body != null ? h('button', {
            class: 'btn small', type: 'button', 'aria-expanded': 'false', onclick: function () {
              box.hidden = !box.hidden;
              this.setAttribute('aria-expanded', String(!box.hidden));
              this.textContent = box.hidden ? 'Show' : 'Hide';
              if (!box.hidden) box.innerHTML = CD.md(rv.body, 3);
            }
          }, ['Show']) : null,
          rv.body != null && i > 0 ? h('button', {
            class: 'btn small', type: 'button', onclick: function () {
              $('#f-body').value = rv.body;
              if (rv.title) $('#f-title').value = rv.title;
              dirty = true;
              render_preview();
              CD.toast('Revision loaded into the editor: save to restore it.');
              $('#f-body').focus();
            }
          }, ['Restore']) : null,
          box
        ]));
      });
    }, function (e) {
      CD.clear(ol);
      ol.appendChild(h('li', { class: 'muted', text: e.status === 404 || e.status === 501 ?
        'This server does not list revisions yet (each save still keeps the previous version).' :
        'Could not load revisions: ' + e.message }));
    });
  }

  /* ---------- test a question ---------- */
  $('#ask').addEventListener('submit', function (e) {
    e.preventDefault();
    var q = $('#ask-q').value.trim();
    var out = CD.clear($('#ask-result'));
    if (!q) return;
    var lang = $('#ask-lang').value;
    var qs = 'q=' + encodeURIComponent(q) + (lang ? '&lang=' + lang : '');
    out.appendChild(h('p', { class: 'muted', text: 'Asking…' }));
    var search = CD.api('/api/search?' + qs).catch(function () { return null; });
    var ask = CD.api('/api/ask?' + qs).catch(function (err) { return { __error: err }; });
    Promise.all([ask, search]).then(function (res) {
      render_decision(out, res[0], res[1]);
    });
  });
  function render_decision(out, d, s) {
    CD.clear(out);
    var hits = (s && (s.hits || s.results)) || [];
    if (d && d.__error) {
      out.appendChild(h('p', { class: 'notice', text: d.__error.status === 404 ?
        'This server has no GET /api/ask route, so the bot\u2019s decision is not shown; the ranked articles below come from search.' :
        'The decision could not be fetched: ' + d.__error.message }));
      d = null;
    }
    if (d) {
      var conf = d.confidence != null ? Math.round(d.confidence * 100) : null;
      var act = d.action || 'unknown';
      out.appendChild(h('div', { class: 'decision' }, [
        h('div', { class: 'box' }, [h('div', { class: 'k', text: 'Decision' }), h('div', { class: 'v' }, [
          h('span', { class: 'pill ' + (act === 'answer' ? 'ok' : act === 'clarify' ? 'warn' : 'bad'), id: 'decision-action', text: act })])]),
        h('div', { class: 'box' }, [h('div', { class: 'k', text: 'Intent' }), h('div', { class: 'v', text: d.intent ? CD.humanize(d.intent) : '–' })]),
        h('div', { class: 'box' }, [h('div', { class: 'k', text: 'Confidence' }), h('div', { class: 'v', text: conf == null ? '–' : conf + '%' }),
          conf == null ? null : h('div', { class: 'bar-conf', 'aria-hidden': 'true' }, [h('span', { style: 'width:' + conf + '%' })])]),
        d.queue ? h('div', { class: 'box' }, [h('div', { class: 'k', text: 'Queue if handed off' }), h('div', { class: 'v', text: d.queue })]) : null
      ]));
      var said = d.text || d.answer || d.collect_prompt;
      if (said) {
        out.appendChild(h('h3', { text: 'What the customer would see' }));
        out.appendChild(h('div', { class: 'reply-preview md', html: CD.md(said, 3) }));
      }
      var choices = d.choices && d.choices.length ? d.choices : act === 'clarify' ? d.candidates || [] : [];
      if (choices.length) {
        out.appendChild(h('p', { text: 'Choices offered: ' + choices.map(function (c) {
          return typeof c === 'string' ? c : c.label || c.title || CD.humanize(c.intent || c.id);
        }).join(' · ') }));
      }
      var ev = d.evidence || {};
      var why = d.reason || [ev.reason, ev.rule].filter(Boolean).join(': ');
      if (why) out.appendChild(h('p', { class: 'small muted', text: 'Why: ' + why }));
      if (!hits.length && d.articles) hits = d.articles;
    }
    out.appendChild(h('h3', { text: 'Ranked articles' }));
    if (!hits.length) { out.appendChild(h('p', { class: 'muted', text: 'No article matches this question.' })); return; }
    var ol = h('ol', { class: 'ranked', id: 'ranked' });
    hits.slice(0, 10).forEach(function (hit) {
      ol.appendChild(h('li', null, [
        h('a', { href: hit.url || '/kb/' + encodeURIComponent(hit.id), target: '_blank', rel: 'noopener', text: hit.title || hit.id }),
        h('span', { class: 'score', text: hit.score != null ? 'score ' + (+hit.score).toFixed(2) : '' }),
        hit.passage ? h('p', { class: 'passage', text: String(hit.passage).replace(/\*\*|`/g, '') }) : null
      ]));
    });
    out.appendChild(ol);
  }

  /* ---------- intents report (GET /api/intents/check) ---------- */
  function load_intents_report() {
    var box = CD.clear($('#intents-report'));
    box.appendChild(h('p', { class: 'empty', text: 'Loading…' }));
    CD.api('/api/intents/check').then(render_intents_report, function (e) {
      CD.clear(box).appendChild(h('p', { class: 'notice bad', text: 'Could not load the report: ' + e.message }));
    });
  }
  function report_list(title, items, line, empty) {
    var sec = h('section', { class: 'report-part' }, [h('h3', { text: title + ' (' + items.length + ')' })]);
    if (!items.length) { sec.appendChild(h('p', { class: 'empty', text: empty })); return sec; }
    sec.appendChild(h('ul', { class: 'report' }, items.map(function (it) { return h('li', { text: line(it) }); })));
    return sec;
  }
  function render_intents_report(r) {
    var box = CD.clear($('#intents-report'));
    var oos = r.out_of_scope || {};
    var acc = r.cross_validated_accuracy;
    box.appendChild(h('p', { class: 'report-summary', text: r.intents + ' intents' +
      (acc != null ? '; held-out examples read right: ' + Math.round(acc * 100) + '%' : '') }));
    box.appendChild(h('section', { class: 'report-part', id: 'intents-oos' }, [
      h('h3', { text: 'Out of scope' }), h('p', { text: oos.why || '' })]));
    box.appendChild(report_list('Intents with too few examples', r.too_few_examples || [], function (it) {
      return it.intent + ': ' + it.examples + ' examples (write ' + it.suggested + ' or more)';
    }, 'Every intent has enough examples.'));
    box.appendChild(report_list('Intents the model confuses', r.confused_pairs || [], function (it) {
      return it.intent + ' read as ' + it.read_as + ': ' + it.examples + ' held-out examples (' + Math.round(it.share * 100) + '%)';
    }, 'No pair of intents is confused.'));
    box.appendChild(report_list('Examples that read as another intent', r.misread_examples || [], function (it) {
      return it.intent + ': “' + it.example + '” reads as ' + it.read_as + ' (' + it.probability.toFixed(2) + ')';
    }, 'Every example reads as its own intent.'));
  }
  $('#intents-refresh').addEventListener('click', load_intents_report);

  /* ---------- unanswered questions ---------- */
  function load_unanswered() {
    var box = CD.clear($('#unanswered'));
    box.appendChild(h('p', { class: 'empty', text: 'Loading…' }));
    CD.api('/api/unanswered').catch(function (e) {
      if (e.status !== 404) throw e;
      return CD.api('/api/stats').then(function (st) { return { questions: st.unanswered || (st.week && st.week.unanswered) || [] }; });
    }).then(function (r) {
      var qs = (r && (r.questions || r.items || r.unanswered)) || (Array.isArray(r) ? r : []);
      render_unanswered(qs);
    }, function (e) {
      CD.clear(box).appendChild(h('p', { class: 'notice bad', text: 'Could not load the questions: ' + e.message }));
    });
  }
  function render_unanswered(qs) {
    var box = CD.clear($('#unanswered'));
    var badge = $('#unanswered-count');
    badge.textContent = String(qs.length);
    badge.hidden = !qs.length;
    if (!qs.length) { box.appendChild(h('p', { class: 'empty', text: 'Nothing left unanswered. Good work.' })); return; }
    var ul = h('ul', { class: 'uq' });
    var options = articles.filter(function (a) { return status_of(a) === 'published'; })
      .sort(function (x, y) { return String(x.title).localeCompare(String(y.title)); });
    qs.forEach(function (item, i) {
      var text = typeof item === 'string' ? item : item.text || item.question || item.q || item.name;
      var sel_id = 'uq-sel-' + i;
      var sel = h('select', { id: sel_id, class: 'compact' }, [h('option', { value: '', text: 'Choose an article…' })].concat(
        options.map(function (a) { return h('option', { value: a.id, text: a.title || a.id }); })));
      var btn = h('button', { class: 'btn small primary', type: 'button', text: 'This article answers it' });
      var li = h('li', { 'data-question': text }, [
        h('div', null, [
          h('div', { class: 'q', text: '“' + text + '”' }),
          h('div', { class: 'meta', text: [item.count ? 'asked ' + item.count + '×' : '', item.lang ? item.lang.toUpperCase() : '',
            item.last_s || item.last_seen ? 'last ' + CD.ago(item.last_s || item.last_seen) : '',
            item.outcome ? CD.humanize(item.outcome) : ''].filter(Boolean).join(' · ') })
        ]),
        h('div', { class: 'answer' }, [h('label', { class: 'sr', for: sel_id, text: 'Article that answers “' + text + '”' }), sel, btn])
      ]);
      btn.addEventListener('click', function () {
        if (!sel.value) { CD.toast('Choose the article that answers this question.', true); sel.focus(); return; }
        btn.disabled = true;
        CD.api('/api/learn', { method: 'POST', body: { question: text, article: sel.value } }).then(function () {
          li.classList.add('done');
          btn.textContent = 'Learned';
          sel.disabled = true;
          CD.toast('Learned: the bot will answer this with the chosen article.');
        }, function (e) {
          btn.disabled = false;
          CD.toast('Not learned: ' + e.message, true);
        });
      });
      ul.appendChild(li);
      /* Suggest the best current match so one click usually does it: the server's
         suggestion (GET /api/unanswered), else a search from here. */
      var sug = item && item.suggested;
      if (sug && sug.id) {
        sel.insertBefore(h('optgroup', { label: 'Best match' }, [h('option', { value: sug.id, text: sug.title || sug.id })]),
          sel.children[1] || null);
        sel.value = sug.id;
      } else if (i < 25) {
        CD.api('/api/search?q=' + encodeURIComponent(text)).then(function (r) {
          var hits = (r && (r.hits || r.results)) || [];
          if (!hits.length) return;
          var group = h('optgroup', { label: 'Best matches' }, hits.slice(0, 5).map(function (x) {
            return h('option', { value: x.id, text: x.title || x.id });
          }));
          sel.insertBefore(group, sel.children[1] || null);
          if (!sel.value) sel.value = hits[0].id;
        }, function () { /* no suggestion */ });
      }
    });
    box.appendChild(ul);
  }
  $('#unanswered-refresh').addEventListener('click', load_unanswered);

  /* ---------- start ---------- */
  CD.require_signin({
    role: 'author',
    /* GET /api/articles/ID checks the author role before it looks the id up:
     * 404 for this made-up id means the token is good. */
    verify: function (tok) {
      return CD.api('/api/me', { token: tok }).catch(function (e) {
        if (e.status !== 404 && e.status !== 405) throw e;
        return CD.api('/api/articles/caredesk-sign-in-check', { token: tok }).then(function () { return {}; }, function (e2) {
          if (e2.status === 404) return {};
          throw e2;
        });
      });
    },
    onready: function () {
      load_list().then(function () {
        var hash = location.hash.slice(1);
        var t = hash && $('#tab-' + hash);
        if (t) show_tab(t);
      });
    },
    onsignout: function () { articles = []; current = null; dirty = false; }
  });
})();
