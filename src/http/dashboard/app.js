// cryptoflow dashboard: the shell. Fetches from the API, keeps one
// EventSource on /api/stream (the browser resumes it with Last-Event-ID by
// itself), falls back to polling when SSE is unavailable, routes between
// pages (pages.js) by the URL hash, and offers small helpers (formatting,
// uPlot charts). No framework, no build step; served by the binary.
'use strict';

const CF = (() => {
  const listeners = new Set();
  const state = { mode: 'connecting', lastEventId: null, stats: null };
  let pollTimer = null;
  let source = null;
  let errorsInARow = 0;

  async function api(path) {
    const r = await fetch(path, { cache: 'no-store' });
    // /api/health answers 503 with a body when degraded.
    if (!r.ok && !(r.status === 503 && path.startsWith('/api/health'))) {
      throw new Error(`${path}: HTTP ${r.status}`);
    }
    return r.json();
  }

  function emit(type, data) {
    for (const f of listeners) {
      try { f(type, data); } catch (e) { console.warn('listener failed', e); }
    }
  }

  function setMode(mode) {
    state.mode = mode;
    const el = document.getElementById('live');
    el.textContent = { live: 'live (SSE)', polling: 'polling', connecting: 'connecting…' }[mode] || mode;
    el.className = 'pill ' + (mode === 'live' ? 'ok' : mode === 'polling' ? 'warn' : '');
    el.dataset.mode = mode;
  }

  function startPolling() {
    if (pollTimer) return;
    setMode('polling');
    pollTimer = setInterval(() => emit('poll', null), 2000);
    emit('reset', null);
  }

  function connect() {
    if (typeof EventSource === 'undefined') { startPolling(); return; }
    source = new EventSource('/api/stream');
    const on = (type) => source.addEventListener(type, (ev) => {
      errorsInARow = 0;
      state.lastEventId = ev.lastEventId;
      if (state.mode !== 'live') {
        setMode('live');
        if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      }
      const data = ev.data ? JSON.parse(ev.data) : null;
      if (type === 'stats') state.stats = data;
      // A fresh connection (hello) or a lost resume point (reset): reload snapshots.
      emit(type === 'hello' ? 'reset' : type, data);
    });
    ['hello', 'reset', 'bar', 'best', 'champion', 'stats'].forEach(on);
    source.onerror = () => {
      errorsInARow += 1;
      // The browser retries by itself; after repeated failures, poll meanwhile.
      if (errorsInARow >= 3) startPolling();
    };
  }

  // Pages: { title, render(el, arg) -> Promise, on(type, data)?, destroy()? }
  const pages = {};
  let current = null;

  async function route() {
    const [name, ...rest] = (location.hash.replace(/^#\/?/, '') || 'overview').split('/');
    const page = pages[name] ? name : 'overview';
    if (current && current.page.destroy) current.page.destroy();
    document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === page));
    const el = document.getElementById('page');
    el.innerHTML = '';
    el.dataset.page = page;
    const p = Object.create(pages[page]);
    current = { page: p };
    document.title = `cryptoflow · ${p.title}`;
    try {
      await p.render(el, decodeURIComponent(rest.join('/')));
      el.dataset.ready = 'true';
    } catch (e) {
      el.innerHTML = `<p class="empty">cannot load this page: ${esc(String(e.message || e))}</p>`;
    }
  }

  listeners.add((type, data) => {
    if (current && current.page.on) current.page.on(type, data);
  });

  async function health() {
    const el = document.getElementById('health');
    try {
      const h = await api('/api/health');
      el.textContent = h.status === 'ok' ? 'healthy' : 'degraded';
      el.className = 'pill ' + (h.status === 'ok' ? 'ok' : 'bad');
      el.title = h.reasons.join('\n');
      el.dataset.status = h.status;
    } catch (e) {
      el.textContent = 'server unreachable';
      el.className = 'pill bad';
    }
  }

  // ---- helpers ----
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function price(x) {
    if (x === null || x === undefined) return '–';
    const d = Math.abs(x) >= 1000 ? 2 : Math.abs(x) >= 1 ? 4 : 6;
    return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function pct(x, digits = 2) { return x === null || x === undefined ? '–' : `${(x * 100).toFixed(digits)}%`; }
  function num(x, digits = 4) { return x === null || x === undefined ? '–' : Number(x).toFixed(digits); }
  function age(ms) {
    if (ms === null || ms === undefined) return '–';
    const s = ms / 1000;
    if (s < 90) return `${s.toFixed(0)} s`;
    if (s < 5400) return `${(s / 60).toFixed(0)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }
  function utc(ms, withDate = true) {
    if (!ms) return '–';
    const iso = new Date(ms).toISOString();
    return withDate ? iso.slice(0, 19).replace('T', ' ') : iso.slice(11, 19);
  }
  function horizonLabel(p) { return `${p.horizon_bars} bar${p.horizon_bars === 1 ? '' : 's'} (${age(p.horizon_ms)})`; }

  const palette = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#0598bc', '#bf3989', '#57606a'];

  // The y axis as wide as its longest label (uPlot's default cuts big prices).
  function axisSize(u, values) {
    if (!values) return 50;
    const longest = Math.max(...values.map((v) => String(v).length));
    return 18 + longest * 7;
  }

  // A uPlot chart in `el`, resized with its container.
  function chart(el, opts, data) {
    const width = Math.max(200, el.clientWidth || 600);
    const base = { width, height: 220, legend: { live: false }, axes: [{}, { size: axisSize }] };
    const u = new uPlot(Object.assign(base, opts, { width }), data, el);
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 4) u.setSize({ width: w, height: u.height });
    });
    ro.observe(el);
    u._ro = ro;
    return u;
  }
  function destroyChart(u) { if (u) { if (u._ro) u._ro.disconnect(); u.destroy(); } }

  function start() {
    window.addEventListener('hashchange', route);
    connect();
    health();
    setInterval(health, 3000);
    route();
  }

  return { api, esc, price, pct, num, age, utc, horizonLabel, chart, destroyChart, palette, pages, state, start, listeners };
})();

document.addEventListener('DOMContentLoaded', () => {
  // pages.js registers the pages before this runs (scripts are deferred in order).
  CF.start();
});
