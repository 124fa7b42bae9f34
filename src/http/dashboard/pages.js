// cryptoflow dashboard: the five pages. Each renders from REST snapshots
// and then follows the live stream (or the polling fallback). The raw
// values behind a displayed number are kept in data-* attributes, so a
// test can compare them with the API.
'use strict';

(() => {
  const { api, esc, price, pct, num, age, utc, horizonLabel, chart, destroyChart, palette, pages } = CF;

  function predRows(preds) {
    if (!preds.length) return '<tr><td class="l muted" colspan="4">no prediction yet (models warm up for 121 bars)</td></tr>';
    return preds.map((p) => {
      const cls = p.predicted_return > 0 ? 'up' : p.predicted_return < 0 ? 'down' : '';
      const band = p.interval_low === null ? '' : `${price(p.interval_low)} – ${price(p.interval_high)}`;
      return `<tr class="pred" data-symbol="${esc(p.symbol)}" data-horizon="${p.horizon_bars}" data-model="${esc(p.model)}"
        data-predicted-price="${p.predicted_price}" data-made-at="${p.made_at_ms}">
        <td class="l">${esc(horizonLabel(p))}</td><td class="l"><b>${esc(p.model)}</b><br><span class="muted">skill ${num(p.champion_skill, 3)}</span></td>
        <td><span class="${cls}">${price(p.predicted_price)}</span><br><span class="muted band">${band}</span></td></tr>`;
    }).join('');
  }

  // ---------------- Overview ----------------
  pages.overview = {
    title: 'Overview',
    async render(el) {
      this.el = el;
      this.cards = new Map();
      el.innerHTML = `<h1>Overview <span class="muted" id="ov-meta"></span></h1><div class="grid" id="cards"></div>`;
      await this.reload();
      this.timer = setInterval(() => this.tickAges(), 1000);
    },
    async reload() {
      const syms = await api('/api/symbols');
      const grid = this.el.querySelector('#cards');
      if (!syms.length) { grid.innerHTML = '<p class="empty">no bars yet: waiting for ticks…</p>'; return; }
      const seen = new Set();
      for (const s of syms) { seen.add(s.symbol); this.card(s); }
      for (const [sym, c] of this.cards) if (!seen.has(sym)) { destroyChart(c.spark); c.root.remove(); this.cards.delete(sym); }
      this.el.querySelector('#ov-meta').textContent = `· ${syms.length} symbols`;
    },
    card(s) {
      let c = this.cards.get(s.symbol);
      const grid = this.el.querySelector('#cards');
      if (!c) {
        if (grid.querySelector('.empty')) grid.innerHTML = '';
        const root = document.createElement('div');
        root.className = 'card symbol-card';
        root.dataset.symbol = s.symbol;
        root.innerHTML = `<div class="head"><span class="sym"><a href="#/symbol/${esc(s.symbol)}">${esc(s.symbol)}</a></span>
          <span><span class="price"></span><span class="change"></span></span></div>
          <div class="spark"></div><div class="fresh"></div>
          <table class="preds"><tbody></tbody></table>`;
        grid.appendChild(root);
        c = { root, data: s };
        c.spark = chart(root.querySelector('.spark'), {
          height: 60, cursor: { show: false }, legend: { show: false },
          axes: [{ show: false }, { show: false }],
          series: [{}, { stroke: palette[0], width: 1.5, fill: 'rgba(31,111,235,0.08)' }],
          scales: { x: { time: false } },
        }, [[], []]);
        this.cards.set(s.symbol, c);
      }
      c.data = s;
      this.paint(c);
    },
    paint(c) {
      const s = c.data;
      const cls = s.change > 0 ? 'up' : s.change < 0 ? 'down' : '';
      const p = c.root.querySelector('.price');
      p.textContent = price(s.last_price);
      p.dataset.value = s.last_price;
      const ch = c.root.querySelector('.change');
      ch.textContent = `${s.change >= 0 ? '+' : ''}${pct(s.change)}`;
      ch.className = 'change ' + cls;
      c.spark.setData([s.sparkline.map((_, i) => i), s.sparkline]);
      c.root.querySelector('.preds tbody').innerHTML = predRows(s.predictions);
      this.paintAges(c);
    },
    paintAges(c) {
      const s = c.data;
      const now = Date.now();
      const barAge = now - s.last_bar_end_ms;
      const tickAge = s.last_trade_bar_end_ms ? now - s.last_trade_bar_end_ms : null;
      const stale = barAge > 3 * s.bar_ms + 5000;
      c.root.querySelector('.fresh').innerHTML =
        `last tick before ${age(tickAge)} ago · last bar closed ${age(barAge)} ago` +
        (stale ? ' <span class="badge stale">stale</span>' : ' <span class="badge">fresh</span>');
      c.root.dataset.stale = stale;
    },
    tickAges() { for (const c of this.cards.values()) this.paintAges(c); },
    on(type, d) {
      if (type === 'reset' || type === 'poll') { this.reload(); return; }
      const c = d && this.cards.get(d.symbol);
      if (type === 'bar') {
        if (!c) { this.reload(); return; }
        const s = c.data;
        s.sparkline.push(d.close);
        if (s.sparkline.length > 60) s.sparkline.shift();
        s.ref_price = s.sparkline[0];
        s.last_price = d.close;
        s.change = d.close / s.ref_price - 1;
        s.last_bar_end_ms = d.end_ms;
        if (!d.filled) s.last_trade_bar_end_ms = d.end_ms;
        this.paint(c);
      } else if (type === 'best' && c) {
        const preds = c.data.predictions.filter((p) => p.horizon_bars !== d.horizon_bars);
        if (d.op === 'insert') preds.push(d);
        preds.sort((a, b) => a.horizon_bars - b.horizon_bars);
        c.data.predictions = preds;
        this.paint(c);
      }
    },
    destroy() { clearInterval(this.timer); for (const c of this.cards.values()) destroyChart(c.spark); },
  };

  // ---------------- Symbol ----------------
  function rolling(scores, window) {
    // Per model: rolling MSE over the last `window` scores, at each outcome time.
    const byModel = new Map();
    for (const s of scores) {
      if (!byModel.has(s.model)) byModel.set(s.model, []);
      byModel.get(s.model).push(s);
    }
    const times = [...new Set(scores.map((s) => s.target_at_ms))].sort((a, b) => a - b);
    const idx = new Map(times.map((t, i) => [t, i]));
    const mse = new Map();
    for (const [m, list] of byModel) {
      const out = new Array(times.length).fill(null);
      let sum = 0;
      const q = [];
      for (const s of list) {
        const e = (s.predicted_return - s.realized_return) ** 2;
        q.push(e); sum += e;
        if (q.length > window) sum -= q.shift();
        if (q.length >= Math.min(window, 10)) out[idx.get(s.target_at_ms)] = sum / q.length;
      }
      mse.set(m, out);
    }
    return { times, mse };
  }

  pages.symbol = {
    title: 'Symbol',
    async render(el, arg) {
      this.el = el;
      const syms = await api('/api/symbols');
      this.symbol = arg || (syms[0] && syms[0].symbol);
      if (!this.symbol) { el.innerHTML = '<p class="empty">no symbols yet: waiting for ticks…</p>'; return; }
      this.horizon = null;
      el.innerHTML = `<div class="toolbar"><h1 class="flush">${esc(this.symbol)}</h1>
          <select id="sym">${syms.map((s) => `<option ${s.symbol === this.symbol ? 'selected' : ''}>${esc(s.symbol)}</option>`).join('')}</select>
          <label>horizon <select id="hz"></select></label><span class="muted" id="sy-meta"></span></div>
        <div class="card"><h3>Price (bar closes) with each horizon's champion prediction and its 80% band ahead</h3>
          <div id="price" class="chart"></div><table class="preds"><tbody id="preds"></tbody></table></div>
        <div class="grid2 spaced">
          <div class="card"><h3>Realised vs predicted return of the champion (bp)</h3><div id="rvp" class="chart"></div></div>
          <div class="card"><h3>Rolling RMSE per model (last 50 scores, bp)</h3><div id="rmse" class="chart"></div></div>
          <div class="card"><h3>Rolling skill versus persistence per model</h3><div id="skill" class="chart"></div></div>
          <div class="card"><h3>Champion history</h3><div id="champs"></div></div>
        </div>`;
      el.querySelector('#sym').onchange = (e) => { location.hash = `#/symbol/${e.target.value}`; };
      el.querySelector('#hz').onchange = (e) => { this.horizon = Number(e.target.value); this.loadScores(); };
      await this.loadPrice();
      await Promise.all([this.loadScores(), this.loadChampions()]);
    },
    async loadPrice() {
      const [page, preds] = await Promise.all([
        api(`/api/bars/${this.symbol}?limit=150`),
        api(`/api/predictions/${this.symbol}`).catch(() => []),
      ]);
      this.bars = page.bars;
      this.preds = preds;
      const hz = this.el.querySelector('#hz');
      if (!this.horizon) {
        this.horizon = preds.length ? preds[0].horizon_bars : 1;
        hz.innerHTML = (preds.length ? preds : [{ horizon_bars: 1, horizon_ms: 0 }])
          .map((p) => `<option value="${p.horizon_bars}">${esc(horizonLabel(p))}</option>`).join('');
      }
      this.drawPrice();
    },
    priceData() {
      const xs = this.bars.map((b) => b.end_ms / 1000);
      const close = this.bars.map((b) => b.close);
      const series = [close];
      // Each horizon: a line from the base price to the predicted price at the target, and its band.
      const extra = [];
      for (const p of this.preds) extra.push(p);
      const allX = [...xs];
      for (const p of extra) { allX.push(p.made_at_ms / 1000, p.target_at_ms / 1000); }
      const uniq = [...new Set(allX)].sort((a, b) => a - b);
      const pos = new Map(uniq.map((x, i) => [x, i]));
      const col = () => new Array(uniq.length).fill(null);
      const c = col();
      xs.forEach((x, i) => { c[pos.get(x)] = close[i]; });
      const data = [uniq, c];
      for (const p of extra) {
        const mid = col(); const lo = col(); const hi = col();
        const a = pos.get(p.made_at_ms / 1000); const b = pos.get(p.target_at_ms / 1000);
        mid[a] = p.base_price; mid[b] = p.predicted_price;
        lo[a] = p.base_price; hi[a] = p.base_price;
        lo[b] = p.interval_low ?? p.predicted_price; hi[b] = p.interval_high ?? p.predicted_price;
        data.push(mid, lo, hi);
      }
      return { data, n: series.length };
    },
    drawPrice() {
      const el = this.el.querySelector('#price');
      const { data } = this.priceData();
      el.dataset.points = this.bars.length;
      el.dataset.lastEnd = this.bars.length ? this.bars[this.bars.length - 1].end_ms : 0;
      const nPreds = this.preds.length;
      if (this.priceChart && this.priceChart.series.length === 2 + 3 * nPreds) {
        this.priceChart.setData(data);
      } else {
        destroyChart(this.priceChart);
        const series = [{}, { label: 'close', stroke: '#24292f', width: 1.5 }];
        const bands = [];
        this.preds.forEach((p, i) => {
          const color = palette[(i + 1) % palette.length];
          series.push({ label: `h${p.horizon_bars} ${p.model}`, stroke: color, width: 2, dash: [4, 3], spanGaps: true, points: { show: true, size: 5 } });
          series.push({ label: `low h${p.horizon_bars}`, stroke: color + '55', width: 1, spanGaps: true });
          series.push({ label: `high h${p.horizon_bars}`, stroke: color + '55', width: 1, spanGaps: true });
          const lo = 2 + 3 * i + 1;
          bands.push({ series: [lo + 1, lo], fill: color + '1f' });
        });
        this.priceChart = chart(el, { height: 300, series, bands, legend: { show: true, live: false }, axes: [{}, { size: 90 }] }, data);
      }
      this.el.querySelector('#preds').innerHTML = predRows(this.preds);
      this.el.querySelector('#sy-meta').textContent = `· ${this.bars.length} bars · last close ${this.bars.length ? utc(this.bars[this.bars.length - 1].end_ms) : '–'} UTC`;
    },
    async loadScores() {
      const h = this.horizon || 1;
      const page = await api(`/api/scores/${this.symbol}?horizon=${h}&limit=400`);
      const champ = (this.preds.find((p) => p.horizon_bars === h) || {}).model || 'persistence';
      const own = page.scores.filter((s) => s.model === champ).slice(-200);
      const rvp = [own.map((s) => s.target_at_ms / 1000), own.map((s) => s.realized_return * 1e4), own.map((s) => s.predicted_return * 1e4)];
      destroyChart(this.rvpChart);
      this.rvpChart = chart(this.el.querySelector('#rvp'), {
        series: [{}, { label: 'realised', stroke: '#24292f', width: 1 }, { label: `predicted (${champ})`, stroke: palette[1], width: 1.5 }],
        legend: { show: true, live: false },
      }, rvp);
      const { times, mse } = rolling(page.scores, 50);
      const models = [...mse.keys()].sort();
      const xs = times.map((t) => t / 1000);
      destroyChart(this.rmseChart);
      destroyChart(this.skillChart);
      this.rmseChart = chart(this.el.querySelector('#rmse'), {
        series: [{}, ...models.map((m, i) => ({ label: m, stroke: palette[i % palette.length], width: 1.5, spanGaps: true }))],
        legend: { show: true, live: false },
      }, [xs, ...models.map((m) => mse.get(m).map((v) => (v === null ? null : Math.sqrt(v) * 1e4)))]);
      const base = mse.get('persistence');
      const others = models.filter((m) => m !== 'persistence');
      this.skillChart = chart(this.el.querySelector('#skill'), {
        // Skill below −1 (an MSE twice persistence's) is clipped to keep the rest readable.
        scales: { y: { range: (u, min, max) => [Math.max(-1, Math.min(min, -0.05)), Math.min(1, Math.max(max, 0.05))] } },
        series: [{}, ...others.map((m, i) => ({ label: m, stroke: palette[(i + 1) % palette.length], width: 1.5, spanGaps: true }))],
        legend: { show: true, live: false },
      }, [xs, ...others.map((m) => mse.get(m).map((v, i) => (v === null || !base || !base[i] ? null : 1 - v / base[i])))]);
      this.scoresAt = Date.now();
    },
    async loadChampions() {
      const c = await api(`/api/champions/${this.symbol}`);
      const rows = [...c.history].reverse().map((h) => `<tr><td>${h.horizon_bars}</td><td class="l"><b>${esc(h.champion.model)}</b></td>
        <td>${h.champion.since_ms ? utc(h.champion.since_ms) : 'baseline'}</td><td>${num(h.champion.skill, 4)}</td>
        <td>${h.champion.samples}</td><td class="wrap">${esc(h.champion.reason)}</td></tr>`).join('');
      this.el.querySelector('#champs').innerHTML = `<table><thead><tr><th>horizon</th><th class="l">champion</th><th>since (UTC)</th>
        <th>skill</th><th>samples</th><th class="l">why</th></tr></thead><tbody>${rows || '<tr><td colspan="6" class="l muted">none yet</td></tr>'}</tbody></table>`;
    },
    on(type, d) {
      if (type === 'reset' || type === 'poll') { this.loadPrice(); if (type === 'reset') this.loadChampions(); return; }
      if (!d || d.symbol !== this.symbol || !this.bars) return;
      if (type === 'bar') {
        const last = this.bars[this.bars.length - 1];
        if (!last || d.end_ms > last.end_ms) {
          this.bars.push(d);
          if (this.bars.length > 600) this.bars.shift();
        }
        this.drawPrice();
        if (Date.now() - (this.scoresAt || 0) > 5000) this.loadScores();
      } else if (type === 'best') {
        this.preds = this.preds.filter((p) => p.horizon_bars !== d.horizon_bars);
        if (d.op === 'insert') this.preds.push(d);
        this.preds.sort((a, b) => a.horizon_bars - b.horizon_bars);
        this.drawPrice();
      } else if (type === 'champion') {
        this.loadChampions();
      }
    },
    destroy() { [this.priceChart, this.rvpChart, this.rmseChart, this.skillChart].forEach(destroyChart); },
  };

  // ---------------- Models ----------------
  pages.models = {
    title: 'Models',
    async render(el) {
      this.el = el;
      this.sort = { key: 'skill', dir: -1 };
      el.innerHTML = `<div class="toolbar"><h1 class="flush">Models</h1><label>symbol <select id="m-sym"></select></label>
        <label>horizon <select id="m-hz"></select></label><label>metrics <select id="m-kind"><option value="rolling">rolling (last 15 min)</option><option value="day">last evaluated day</option></select></label></div>
        <div class="card"><div id="champ"></div><table id="board"></table></div>
        <h2>Daily evaluations</h2><div class="card"><table id="days"></table></div>`;
      ['#m-sym', '#m-hz', '#m-kind'].forEach((s) => { el.querySelector(s).onchange = () => this.paint(); });
      await this.reload();
    },
    async reload() {
      this.models = await api('/api/models');
      const syms = [...new Set(this.models.map((m) => m.symbol))];
      const hzs = [...new Set(this.models.map((m) => m.horizon_bars))].sort((a, b) => a - b);
      const fill = (sel, vals) => {
        const el = this.el.querySelector(sel); const cur = el.value;
        el.innerHTML = vals.map((v) => `<option ${String(v) === cur ? 'selected' : ''}>${esc(v)}</option>`).join('');
      };
      fill('#m-sym', syms); fill('#m-hz', hzs);
      await this.paint();
    },
    async paint() {
      const sym = this.el.querySelector('#m-sym').value;
      const hz = Number(this.el.querySelector('#m-hz').value);
      const kind = this.el.querySelector('#m-kind').value;
      const s = (this.models || []).find((m) => m.symbol === sym && m.horizon_bars === hz);
      if (!s) { this.el.querySelector('#board').innerHTML = '<tr><td class="empty">no models yet</td></tr>'; return; }
      const c = s.champion;
      this.el.querySelector('#champ').innerHTML = c
        ? `<p>Champion of <b>${esc(sym)}</b>, ${hz} bar(s): <b data-champion="${esc(c.model)}">${esc(c.model)}</b>
           ${c.since_ms ? `since ${utc(c.since_ms)} UTC` : '(baseline, no day evaluated yet)'} · skill ${num(c.skill, 4)} · <span class="muted">${esc(c.reason)}</span></p>`
        : '<p class="muted">no champion yet</p>';
      let rows;
      if (kind === 'rolling') {
        rows = Object.entries(s.rolling).map(([model, r]) => ({ model, samples: r.samples, mae: r.mae, rmse: r.rmse, hit_rate: r.hit_rate, skill: r.skill, coverage: r.coverage, winner: c && c.model === model }));
      } else {
        rows = s.last_day_metrics.map((e) => ({ ...e, winner: e.winner }));
      }
      const k = this.sort.key; const dir = this.sort.dir;
      rows.sort((a, b) => ((a[k] ?? -Infinity) > (b[k] ?? -Infinity) ? dir : (a[k] ?? -Infinity) < (b[k] ?? -Infinity) ? -dir : 0));
      const cols = [['model', 'model'], ['samples', 'samples'], ['mae', 'MAE (bp)'], ['rmse', 'RMSE (bp)'], ['hit_rate', 'hit rate'], ['skill', 'skill'], ['coverage', '80% coverage']];
      const head = cols.map(([key, label]) => `<th class="sortable ${key === 'model' ? 'l' : ''}" data-key="${key}">${label}${key === k ? (dir > 0 ? ' ▲' : ' ▼') : ''}</th>`).join('');
      const body = rows.map((r) => `<tr data-model="${esc(r.model)}"><td class="l">${esc(r.model)}${r.winner ? ' <span class="badge win">champion</span>' : ''}</td>
        <td>${r.samples}</td><td>${num(r.mae * 1e4, 2)}</td><td>${num(r.rmse * 1e4, 2)}</td><td>${pct(r.hit_rate, 1)}</td>
        <td>${r.skill === null || r.skill === undefined ? '–' : num(r.skill, 4)}</td><td>${pct(r.coverage, 1)}</td></tr>`).join('');
      const t = this.el.querySelector('#board');
      t.innerHTML = `<thead><tr>${head}</tr></thead><tbody>${body}</tbody>`;
      t.querySelectorAll('th.sortable').forEach((th) => {
        th.onclick = () => { const key = th.dataset.key; this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : -1 }; this.paint(); };
      });
      const ev = await api(`/api/evaluations?symbol=${encodeURIComponent(sym)}`);
      const days = ev.filter((e) => e.horizon_bars === hz).sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : b.skill - a.skill));
      this.el.querySelector('#days').innerHTML = `<thead><tr><th class="l">day</th><th class="l">model</th><th>samples</th><th>MAE (bp)</th><th>RMSE (bp)</th><th>hit rate</th><th>skill</th><th>coverage</th><th class="l">winner, reason</th></tr></thead><tbody>` +
        (days.map((e) => `<tr><td class="l">${e.day}</td><td class="l">${esc(e.model)}</td><td>${e.samples}</td><td>${num(e.mae * 1e4, 2)}</td><td>${num(e.rmse * 1e4, 2)}</td>
          <td>${pct(e.hit_rate, 1)}</td><td>${num(e.skill, 4)}</td><td>${pct(e.coverage, 1)}</td><td class="wrap">${e.winner ? '<span class="badge win">winner</span> ' + esc(e.reason) : ''}</td></tr>`).join('')
          || '<tr><td class="l muted" colspan="9">no day evaluated yet (a day is judged when event time passes its end)</td></tr>') + '</tbody>';
    },
    on(type) {
      if (type === 'champion' || type === 'reset' || type === 'poll' || (type === 'stats' && Date.now() - (this.at || 0) > 5000)) {
        this.at = Date.now();
        this.reload();
      }
    },
  };

  // ---------------- Jobs ----------------
  pages.jobs = {
    title: 'Jobs',
    async render(el) {
      this.el = el;
      el.innerHTML = `<h1>Jobs</h1><div class="card"><h3>Orchestrator (retrain, evaluate, promote, maintain)</h3><table id="orch"></table></div>
        <div class="card spaced"><h3>Warehouse</h3><table id="sched"></table></div>
        <div class="card spaced"><h3>Epoch commit duration (ms)</h3><div id="lat" class="chart"></div></div>
        <h2>Recent runs</h2><div class="card"><table id="runs"></table></div>`;
      await this.reload();
      this.timer = setInterval(() => this.reload(), 2000);
    },
    async reload() {
      const [j, o] = await Promise.all([api('/api/commits'), api('/api/jobs').catch(() => null)]);
      this.el.querySelector('#orch').innerHTML = o === null
        ? '<tbody><tr><td class="l muted">no orchestrator in this process</td></tr></tbody>'
        : `<thead><tr><th class="l">job</th><th class="l">schedule</th><th class="l">state</th><th>runs</th><th>succeeded</th><th>failed</th><th class="l">detail</th><th class="l">last error</th></tr></thead><tbody>` +
          o.map((s) => `<tr><td class="l">${esc(s.name)}</td><td class="l">${esc(s.schedule)}</td><td class="l${s.failing ? ' state-failed' : ''}">${esc(s.state)}${s.failing ? ' (failing)' : ''}</td>
            <td>${s.runs}</td><td>${s.succeeded}</td><td>${s.failed}</td><td class="l">${esc(s.detail)}</td><td class="wrap">${esc((s.last && s.last.error) || '')}</td></tr>`).join('') + '</tbody>';
      this.el.querySelector('#sched').innerHTML = `<thead><tr><th class="l">job</th><th class="l">runs</th></tr></thead><tbody>` +
        j.scheduled.map((s) => `<tr><td class="l">${esc(s.job)}</td><td class="l">${esc(s.trigger)}</td></tr>`).join('') + '</tbody>';
      this.el.querySelector('#runs').innerHTML = `<thead><tr><th class="l">job</th><th class="l">state</th><th>attempt</th><th>started (UTC)</th><th>duration</th><th>epoch (UTC)</th><th>rows</th><th class="l">detail</th><th class="l">error</th></tr></thead><tbody>` +
        (j.runs.slice(0, 50).map((r) => `<tr><td class="l">${esc(r.job)}</td><td class="l state-${esc(r.state)}">${esc(r.state)}</td><td>${r.attempt}</td>
          <td>${utc(r.started_ms)}</td><td>${r.duration_ms.toFixed(1)} ms</td><td>${r.epoch_ms ? utc(r.epoch_ms) : '–'}</td><td>${r.rows}</td>
          <td class="l">${esc(r.detail)}</td><td class="wrap">${esc(r.error || '')}</td></tr>`).join('') || '<tr><td class="l muted" colspan="9">no run yet</td></tr>') + '</tbody>';
      const commits = j.runs.filter((r) => r.job === 'warehouse.commit').reverse();
      const data = [commits.map((r) => r.started_ms / 1000), commits.map((r) => r.duration_ms)];
      if (this.lat) this.lat.setData(data);
      else this.lat = chart(this.el.querySelector('#lat'), { height: 180, series: [{}, { label: 'commit ms', stroke: palette[0], width: 1.5, points: { show: true, size: 4 } }] }, data);
    },
    destroy() { clearInterval(this.timer); destroyChart(this.lat); },
  };

  // ---------------- Data quality ----------------
  pages.quality = {
    title: 'Data quality',
    async render(el) {
      this.el = el;
      el.innerHTML = `<h1>Data quality</h1><div class="kpis" id="kpis"></div><div id="why"></div>
        <div class="grid2">
          <div class="card"><h3>Throughput (ticks read per second)</h3><div id="tput" class="chart"></div></div>
          <div class="card"><h3>Rejects by reason (per interval)</h3><div id="rej" class="chart"></div></div>
          <div class="card"><h3>Watermark lag per partition (s)</h3><table id="parts"></table></div>
          <div class="card"><h3>Epoch commit duration (ms)</h3><div id="lat" class="chart"></div></div>
        </div>`;
      await this.reload();
      this.timer = setInterval(() => this.reload(), 2000);
    },
    async reload() {
      const [q, h, j] = await Promise.all([api('/api/quality'), api('/api/health'), api('/api/commits')]);
      const s = h.stats;
      const rejects = Object.values(s.rejects).reduce((a, b) => a + b, 0);
      const kpi = (k, v, attr) => `<div class="card kpi" ${attr || ''}><div class="v">${v}</div><div class="k">${k}</div></div>`;
      this.el.querySelector('#kpis').innerHTML =
        kpi('health', `<span class="${h.status === 'ok' ? 'up' : 'down'}">${h.status}</span>`, `data-status="${h.status}"`) +
        kpi('records read', h.checks.ticks_read.toLocaleString(), `data-ticks-read="${h.checks.ticks_read}"`) +
        kpi('ticks in closed bars', s.ticks.toLocaleString()) +
        kpi('rejected', rejects.toLocaleString(), `data-rejects="${rejects}"`) +
        kpi('bars (filled)', `${s.bars.toLocaleString()} <span class="muted small">(${s.bars_filled.toLocaleString()})</span>`) +
        kpi('last tick', `${age(h.checks.last_tick_age_ms)} ago`) +
        kpi('event time', s.event_time_ms ? utc(s.event_time_ms, false) : '–') +
        kpi('commits ok / failed', `${h.checks.commits_ok} / ${h.checks.commits_failed}`);
      this.el.querySelector('#why').innerHTML = h.reasons.length ? `<ul class="reasons">${h.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : '';
      const sm = q.samples;
      const xs = sm.slice(1).map((x) => x.at_ms / 1000);
      const rate = sm.slice(1).map((x, i) => (x.ticks_read - sm[i].ticks_read) / Math.max(0.001, (x.at_ms - sm[i].at_ms) / 1000));
      this.draw('tput', [xs, rate], [{ label: 'ticks/s', stroke: palette[0], width: 1.5 }]);
      const reasons = [...new Set(sm.flatMap((x) => Object.keys(x.rejects)))].sort();
      const total = (x) => Object.values(x.rejects).reduce((a, b) => a + b, 0);
      const rj = reasons.map((r) => sm.slice(1).map((x, i) => (x.rejects[r] || 0) - (sm[i].rejects[r] || 0)));
      const all = sm.slice(1).map((x, i) => total(x) - total(sm[i]));
      this.draw('rej', [xs, all, ...rj], [{ label: 'all reasons', stroke: '#24292f', width: 1 },
        ...reasons.map((r, i) => ({ label: r, stroke: palette[(i + 1) % palette.length], width: 1.5 }))], reasons.join());
      this.el.querySelector('#parts').innerHTML = `<thead><tr><th>partition</th><th>records</th><th>next offset</th><th>watermark (UTC)</th><th>lag</th><th>last record</th></tr></thead><tbody>` +
        (q.partitions.map((p) => `<tr><td>${p.partition}</td><td>${p.records.toLocaleString()}</td><td>${p.next_offset ?? '–'}</td>
          <td>${p.watermark_ms ? utc(p.watermark_ms) : '–'}</td><td>${p.watermark_lag_ms === null ? '–' : (p.watermark_lag_ms / 1000).toFixed(1) + ' s'}</td>
          <td>${age(p.last_record_age_ms)} ago</td></tr>`).join('') || '<tr><td colspan="6" class="l muted">no partition read yet</td></tr>') + '</tbody>';
      const commits = j.runs.filter((r) => r.job === 'warehouse.commit').reverse();
      this.draw('lat', [commits.map((r) => r.started_ms / 1000), commits.map((r) => r.duration_ms)], [{ label: 'commit ms', stroke: palette[2], width: 1.5, points: { show: true, size: 4 } }]);
    },
    draw(id, data, series, shape) {
      this.charts = this.charts || {};
      const key = `${id}:${shape || series.length}`;
      const c = this.charts[id];
      if (c && c.key === key) { c.u.setData(data); return; }
      if (c) destroyChart(c.u);
      this.charts[id] = { key, u: chart(this.el.querySelector('#' + id), { height: 200, series: [{}, ...series], legend: { show: true, live: false } }, data) };
    },
    destroy() { clearInterval(this.timer); Object.values(this.charts || {}).forEach((c) => destroyChart(c.u)); },
  };
})();
