/* caredesk dashboard: the webhook deliveries panel (admins). Lists the recent deliveries from
 * GET /api/webhooks/deliveries with their counts, and sends a failed or delivered one again
 * with POST /api/webhooks/deliveries/{id}/redeliver (the same delivery id). The panel stays
 * hidden for accounts that may not see it (403) and when no endpoint is set and nothing was
 * ever sent. */
(function () {
  'use strict';
  var CD = window.CD, h = CD.h, $ = CD.$;
  var REFRESH_MS = 15000, timer = 0, busy = false;

  function status_pill(d) {
    var cls = d.status === 'delivered' ? 'ok' : d.status === 'failed' ? 'bad' : 'warn';
    return h('span', { class: 'pill ' + cls, text: d.status });
  }

  function result(d) {
    if (d.last_http) return 'HTTP ' + d.last_http;
    return d.last_error || '–';
  }

  function render(data) {
    var card = $('#webhooks-card');
    card.hidden = !data.endpoints && !data.deliveries.length;
    if (card.hidden) return;
    var c = data.counts || {};
    $('#webhooks-counts').textContent = (c.pending || 0) + ' pending · ' + (c.delivered || 0) +
      ' delivered · ' + (c.failed || 0) + ' failed';
    var box = CD.clear($('#webhooks'));
    if (!data.deliveries.length) {
      box.appendChild(h('p', { class: 'empty', text: 'No event has been sent yet.' }));
      return;
    }
    var rows = data.deliveries.map(function (d) {
      var cell = h('td');
      if (d.status !== 'pending') {
        var btn = h('button', { class: 'btn small', type: 'button', text: 'Redeliver',
          'aria-label': 'Redeliver ' + d.event + ' ' + d.delivery });
        btn.addEventListener('click', function () {
          btn.disabled = true;
          CD.api('/api/webhooks/deliveries/' + d.id + '/redeliver', { method: 'POST' }).then(function () {
            CD.toast('Sent again: ' + d.event);
            refresh();
          }, function (e) {
            btn.disabled = false;
            CD.toast('Could not redeliver: ' + e.message, true);
          });
        });
        cell.appendChild(btn);
      }
      return h('tr', { 'data-delivery': d.delivery }, [
        h('td', { text: d.event }),
        h('td', { class: 'num', text: d.conversation == null ? '' : String(d.conversation) }),
        h('td', null, [status_pill(d)]),
        h('td', { class: 'num', text: String(d.attempts) }),
        h('td', { text: result(d), title: d.endpoint }),
        h('td', { text: CD.ago(d.created_at) }),
        cell
      ]);
    });
    box.appendChild(CD.table(['Event', { text: 'Chat', num: 1 }, 'Status', { text: 'Attempts', num: 1 }, 'Last result',
      'Created', ''], rows));
  }

  function refresh() {
    if (busy || !CD.token() || $('#app').hidden) return;
    busy = true;
    CD.api('/api/webhooks/deliveries?limit=20').then(function (data) {
      busy = false;
      render(data);
    }, function (e) {
      busy = false;
      if (e.status === 403 || e.status === 404) $('#webhooks-card').hidden = true;
    });
  }

  $('#webhooks-refresh').addEventListener('click', refresh);
  /* The dashboard signs in on its own; the panel follows once the page is shown. */
  new MutationObserver(refresh).observe($('#app'), { attributes: true, attributeFilter: ['hidden'] });
  clearInterval(timer);
  timer = setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
  refresh();
})();
