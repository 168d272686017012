// The live dashboard. It reads /v1/dashboard/stream with fetch rather than
// EventSource: EventSource cannot send an Authorization header, and the
// token must never travel in a URL, where it would reach logs. fetch also
// lets the page read the problem+json of a refused stream.
'use strict';
(() => {
  const TOKEN_KEY = 'engine.token';
  const STATUSES = ['pending', 'confirmed', 'paid', 'shipped', 'delivered', 'rejected', 'cancelled', 'expired'];
  const SERIES = [['orders_placed', 'placed'], ['orders_confirmed', 'confirmed'], ['orders_rejected', 'rejected']];
  const SVG = 'http://www.w3.org/2000/svg';
  // A stream that stays silent this long is dead even if no error came:
  // the server sends a heartbeat every 15 s.
  const SILENCE_MS = 45000;

  const $ = (id) => document.getElementById(id);
  let token = null;
  let role = null;
  let lastEventId = '';
  let retryMs = 3000;
  let abort = null;
  let reconnectTimer = null;
  let lastSeen = 0;

  // el builds an element; text always goes in as text, never as HTML.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  const num = (n) => Number(n).toLocaleString();

  function money(minor, currency) {
    try {
      const f = new Intl.NumberFormat(undefined, { style: 'currency', currency });
      return f.format(minor / 10 ** f.resolvedOptions().maximumFractionDigits);
    } catch (e) {
      return num(minor) + ' ' + currency + ' (minor units)';
    }
  }

  function setConn(state, text) {
    const c = $('conn');
    c.dataset.state = state;
    c.textContent = text;
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  // takeFragmentToken moves a #token= from the address bar into this tab's
  // sessionStorage and removes it from the address bar and history.
  function takeFragmentToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return;
    const t = decodeURIComponent(m[1]);
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, '', location.pathname + location.search);
  }

  function problem(res, body) {
    const e = new Error((body && (body.detail || body.title)) || 'HTTP ' + res.status);
    e.status = res.status;
    e.code = body && body.code;
    e.retryAfter = Number(res.headers.get('Retry-After')) || 0;
    return e;
  }

  async function api(path) {
    const res = await fetch(path, { headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' }, cache: 'no-store' });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw problem(res, body);
    return body;
  }

  function showSignin(message) {
    $('dash').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('role').textContent = '';
    setConn('off', 'signed out');
    banner(message);
    $('token').focus();
  }

  function signOut(message) {
    if (abort) abort.abort();
    clearTimeout(reconnectTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    role = null;
    showSignin(message);
  }

  async function start() {
    token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return showSignin();
    setConn('connecting', 'connecting…');
    try {
      role = (await api('/v1/whoami')).role;
    } catch (e) {
      if (e.status === 401) return signOut('That token is not valid here.');
      banner('The engine did not answer (' + e.message + '); retrying.');
      reconnectTimer = setTimeout(start, retryMs);
      return;
    }
    if (role === 'client') return signOut('A client token cannot view the dashboard: use a viewer, auditor or admin token.');
    $('signin').hidden = true;
    $('dash').hidden = false;
    $('signout').hidden = false;
    $('role').textContent = 'signed in as ' + role;
    banner('');
    connect();
  }

  function scheduleReconnect(ms) {
    setConn('connecting', 'reconnecting…');
    clearTimeout(reconnectTimer);
    // Jitter, so that dashboards dropped together do not return together.
    reconnectTimer = setTimeout(connect, ms + Math.random() * 500);
  }

  async function connect() {
    clearTimeout(reconnectTimer);
    if (abort) abort.abort();
    const ctl = new AbortController();
    abort = ctl;
    const headers = { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' };
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    let res;
    try {
      res = await fetch('/v1/dashboard/stream', { headers, cache: 'no-store', signal: ctl.signal });
    } catch (e) {
      if (!ctl.signal.aborted) scheduleReconnect(retryMs);
      return;
    }
    if (!res.ok) {
      const e = problem(res, await res.json().catch(() => null));
      if (res.status === 401) return signOut('The token is no longer accepted.');
      if (res.status === 403) return signOut('This token may not view the dashboard.');
      banner('Live updates paused: ' + e.message);
      return scheduleReconnect(e.retryAfter ? e.retryAfter * 1000 : retryMs);
    }
    banner('');
    setConn('live', 'live');
    lastSeen = Date.now();
    try {
      await readEvents(res.body);
    } catch (e) {
      // A reset connection ends up here as well as an abort.
    }
    if (!ctl.signal.aborted) scheduleReconnect(retryMs);
  }

  // readEvents parses text/event-stream as the HTML standard defines it,
  // for the fields the engine sends: data, event, id, retry, comments.
  async function readEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    let type = 'message';
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      lastSeen = Date.now();
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (id !== null) lastEventId = id;
          if (data.length) dispatch(type, data.join('\n'));
          data = [];
          type = 'message';
          id = null;
          continue;
        }
        if (line[0] === ':') continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? '' : line.slice(c + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (field === 'data') data.push(val);
        else if (field === 'event') type = val;
        else if (field === 'id') id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) retryMs = Number(val);
      }
    }
  }

  function dispatch(type, data) {
    if (type === 'problem') {
      banner('Live data is stale: ' + (JSON.parse(data).detail || 'the engine cannot read it now') + '.');
      setConn('error', 'stale');
      return;
    }
    if (type !== 'summary') return;
    banner('');
    setConn('live', 'live');
    render(JSON.parse(data));
  }

  function render(v) {
    renderStatuses(v.orders_by_status || {});
    $('last-hour').textContent = num(v.orders_last_hour || 0);
    $('updated').textContent = new Date().toLocaleTimeString();
    renderChart(v.per_minute || {});
    rows('revenue', Object.keys(v.revenue_cents || {}).sort(), 2, (c) => [
      el('td', null, c), el('td', { class: 'num' }, money(v.revenue_cents[c], c))]);
    rows('lowstock', v.low_stock || [], 4, (i) => [
      el('td', null, i.sku), el('td', { class: 'num' }, num(i.on_hand)),
      el('td', { class: 'num' }, num(i.reserved)), el('td', { class: 'num' }, num(i.available))]);
    const projections = v.projections || [];
    rows('projections', projections, 5, (p) => [
      el('td', null, p.name), el('td', null, p.state || '?'), el('td', { class: 'num' }, num(p.checkpoint)),
      el('td', { class: 'num' }, num(p.lag)), el('td', { class: 'num' }, num(p.dead_letters || 0))]);
    $('dead-letters').textContent = num(projections.reduce((n, p) => n + (p.dead_letters || 0), 0));
    renderBacklog(v.reservation_backlog);
  }

  // renderBacklog draws one bar per partition on a scale of the highest
  // (so that a small backlog still shows), a bar past the limit in red:
  // new orders on that partition's SKUs are being refused with 503. The
  // pale bar behind is the partition's highest sample of the last minute,
  // so a backlog that came and went between two updates still shows.
  function renderBacklog(b) {
    $('backlog-card').hidden = !b;
    if (!b) return;
    const parts = b.partitions || [];
    const peaks = b.peak_last_minute || [];
    const high = Math.max(0, ...parts);
    const top = niceMax(Math.max(1, high, ...peaks));
    const height = (e, n) => { e.style.height = (100 * n) / top + '%'; return e; }; // CSSOM: the CSP refuses style attributes
    $('backlog').replaceChildren(...parts.map((n, p) => {
      const over = b.limit > 0 && n > b.limit;
      const peak = Math.max(n, peaks[p] || 0);
      return el('div', {
        class: 'part', 'data-partition': p, 'data-backlog': n, 'data-peak': peak,
        title: `partition ${p}: ${num(n)} undecided, at most ${num(peak)} in the last minute` + (over ? '; over the limit: new orders refused' : ''),
      }, el('span', { class: 'count' }, num(n)),
      el('div', { class: 'well' }, height(el('div', { class: 'peak' }), peak), height(el('div', { class: 'bar' + (over ? ' over' : '') }), n)),
      el('span', { class: 'label' }, 'p' + p));
    }));
    $('backlog-total').textContent = num(parts.reduce((a, n) => a + n, 0));
    $('backlog-max').textContent = num(high);
    $('backlog-peak').textContent = num(Math.max(0, ...peaks));
    $('backlog-limit').textContent = b.limit > 0
      ? 'limit ' + num(b.limit) + ' per partition: past it, new orders on its SKUs get 503 Retry-After'
      : 'no limit';
  }

  function rows(id, items, cols, cells) {
    const body = $(id);
    body.replaceChildren(...items.map((it) => el('tr', null, ...cells(it))));
    if (!items.length) body.append(el('tr', null, el('td', { class: 'empty', colspan: cols }, 'none')));
  }

  function renderStatuses(byStatus) {
    const tiles = $('statuses');
    const names = STATUSES.concat(Object.keys(byStatus).filter((s) => !STATUSES.includes(s)));
    for (const s of names) {
      let t = tiles.querySelector('[data-status="' + s + '"]');
      if (!t) {
        t = el('div', { class: 'tile', 'data-status': s }, el('div', { class: 'label' }, s), el('div', { class: 'count' }, '0'));
        tiles.append(t);
      }
      t.querySelector('.count').textContent = num(byStatus[s] || 0);
    }
  }

  // renderChart draws the per-minute series as lines on a shared scale, in
  // the chart's own pixels, so the text keeps its size on any screen. The
  // last point is the current minute, still filling: drawn as a dashed
  // segment to a hollow point, so its low count does not read as an outage.
  let lastPerMinute = null;
  function renderChart(perMinute) {
    lastPerMinute = perMinute;
    const W = Math.max(240, Math.round($('chart').clientWidth || 720));
    const H = W < 500 ? 160 : 220, L = 40, R = 10, T = 10, B = 24;
    const series = SERIES.map(([m, cls]) => [cls, perMinute[m] || []]);
    const n = Math.max(1, ...series.map(([, p]) => p.length));
    const top = niceMax(Math.max(1, ...series.flatMap(([, p]) => p.map((x) => x.v))));
    const x = (i) => L + (n === 1 ? 0 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'orders per minute' });
    for (const v of top % 2 ? [0, top] : [0, top / 2, top]) {
      root.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      const label = svg('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
      label.textContent = num(v);
      root.append(label);
    }
    const times = (series.find(([, p]) => p.length) || [null, []])[1];
    for (const i of [0, Math.floor((times.length - 1) / 2), times.length - 1]) {
      if (!times[i]) continue;
      const label = svg('text', { class: 'axis', x: x(i), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === times.length - 1 ? 'end' : 'middle' });
      label.textContent = new Date(times[i].t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      root.append(label);
    }
    for (const [cls, points] of series) {
      const last = points.length - 1;
      const line = svg('polyline', {
        class: 'line ' + cls, 'data-series': cls, 'data-total': points.reduce((n, p) => n + p.v, 0),
        points: points.slice(0, Math.max(last, 0)).map((p, i) => `${x(i)},${y(p.v)}`).join(' '),
      });
      const title = svg('title');
      title.textContent = cls + ' this minute so far: ' + num(last >= 0 ? points[last].v : 0);
      line.append(title);
      root.append(line);
      if (last < 0) continue;
      if (last > 0) {
        root.append(svg('line', {
          class: 'line partial ' + cls, 'data-partial': cls,
          x1: x(last - 1), y1: y(points[last - 1].v), x2: x(last), y2: y(points[last].v),
        }));
      }
      const dot = svg('circle', { class: 'partial-point ' + cls, 'data-partial': cls, cx: x(last), cy: y(points[last].v), r: 3.5 });
      dot.append(title.cloneNode(true));
      root.append(dot);
    }
    $('chart').replaceChildren(root);
  }

  // niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  async function lookup(id) {
    const out = $('order');
    $('timeline-card').hidden = true;
    out.replaceChildren('Looking up…');
    let o;
    try {
      o = await api('/v1/orders/' + encodeURIComponent(id));
    } catch (e) {
      out.replaceChildren(e.status === 404 ? 'No such order (yet: the read model may still be catching up).' : 'Lookup failed: ' + e.message);
      return;
    }
    out.replaceChildren(orderView(o));
    const card = $('timeline-card');
    const list = $('timeline');
    list.replaceChildren();
    card.hidden = false;
    if (role !== 'auditor' && role !== 'admin') {
      $('timeline-note').textContent = 'The event timeline needs an auditor or admin token.';
      return;
    }
    $('timeline-note').textContent = 'From the event store itself, oldest first.';
    try {
      const { events } = await api('/v1/audit/orders/' + encodeURIComponent(id) + '/events');
      list.replaceChildren(...events.map(eventItem));
    } catch (e) {
      $('timeline-note').textContent = 'The timeline could not be read: ' + e.message;
    }
  }

  function orderView(o) {
    const dl = el('dl');
    const add = (k, v) => dl.append(el('dt', null, k), el('dd', null, v));
    add('order', o.order_id);
    add('status', o.status);
    add('customer', o.customer_id);
    add('total', money(o.total_cents, o.currency));
    if (o.refund_due_cents) add('refund due', money(o.refund_due_cents, o.currency));
    if (o.refunded_cents) add('refunded', money(o.refunded_cents, o.currency));
    add('version', o.version);
    add('created', new Date(o.created_at).toLocaleString());
    add('updated', new Date(o.updated_at).toLocaleString());
    const lines = el('tbody');
    rowsInto(lines, o.lines || [], (l) => [el('td', null, l.sku), el('td', { class: 'num' }, num(l.qty)),
      el('td', { class: 'num' }, money(l.unit_price_cents, o.currency)), el('td', { class: 'num' }, num(l.returned_qty || 0))]);
    const table = el('table', null, el('thead', null, el('tr', null, el('th', null, 'SKU'), el('th', { class: 'num' }, 'qty'),
      el('th', { class: 'num' }, 'unit price'), el('th', { class: 'num' }, 'returned'))), lines);
    return el('div', null, dl, el('div', { class: 'scroll' }, table));
  }

  function rowsInto(body, items, cells) {
    body.replaceChildren(...items.map((it) => el('tr', null, ...cells(it))));
  }

  function eventItem(ev) {
    return el('li', { 'data-type': ev.type },
      el('div', { class: 'type' }, ev.type),
      el('div', { class: 'meta' }, 'version ' + ev.version + ' · seq ' + ev.seq + ' · ' + new Date(ev.occurred_at).toLocaleString() +
        ' · hash ' + String(ev.hash || '').slice(0, 12)),
      el('details', null, el('summary', null, 'data'), el('pre', null, JSON.stringify(ev.data, null, 1))));
  }

  // A silent stream (a proxy that swallowed the close, a sleeping laptop)
  // is ended so the reconnect can begin.
  setInterval(() => {
    if (token && abort && $('conn').dataset.state === 'live' && Date.now() - lastSeen > SILENCE_MS) {
      abort.abort();
      scheduleReconnect(0);
    }
  }, 5000);

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      $('token').value = '';
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      start();
    });
    $('signout').addEventListener('click', () => signOut());
    let resizing = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => lastPerMinute && renderChart(lastPerMinute), 100);
    });
    $('lookup-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('order-id').value.trim();
      if (id) lookup(id);
    });
    // A #token= link opened in a tab that already shows the page.
    window.addEventListener('hashchange', () => {
      if (!/token=/.test(location.hash)) return;
      takeFragmentToken();
      start();
    });
    takeFragmentToken();
    start();
  });
})();
