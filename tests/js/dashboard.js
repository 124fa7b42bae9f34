// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium)
// through Playwright (playwright-core, installed by scripts/setup.sh into
// $CRYPTOFLOW_CACHE/node). Called by tests/dashboard.rs:
//   node tests/js/dashboard.js BASE_URL OUT_DIR SYMBOL[,SYMBOL…]
// Checks every page loads with no console error, page error or failed
// request; every symbol appears; the symbol page's price chart grows while
// ticks flow; the champion and prediction shown equal /api/predictions at
// that moment. Writes a screenshot of each page to OUT_DIR. Every wait is
// explicit and bounded; prints one JSON line per check and exits 1 on the
// first failure.
'use strict';

const { chromium } = require('playwright-core');
const path = require('path');

const [base, outDir, symbolList] = process.argv.slice(2);
const symbols = symbolList.split(',');
const WAIT = 30_000;

function log(obj) { console.log(JSON.stringify(obj)); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      // The SSE request is aborted when the page navigates away or closes.
      if (!r.url().endsWith('/api/stream')) problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !(r.status() === 503 && r.url().includes('/api/health'))) {
        problems.push(`HTTP ${r.status()}: ${r.url()}`);
      }
    });
    const check = (what) => {
      if (problems.length) throw new Error(`${what}: ${problems.join('; ')}`);
    };
    const shot = async (name) => {
      const file = path.join(outDir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      log({ screenshot: file });
    };
    const open = async (hash) => {
      await page.goto(`${base}/${hash}`);
      await page.waitForFunction((h) => {
        const el = document.querySelector('#page');
        return location.hash === h && el && el.dataset.ready === 'true';
      }, hash);
    };

    // Overview: every symbol, live mode, predictions.
    await open('#/overview');
    for (const s of symbols) {
      await page.waitForSelector(`.symbol-card[data-symbol="${s}"] tr.pred`);
    }
    await page.waitForSelector('#live[data-mode="live"]');
    log({ check: 'overview shows every symbol', symbols });

    // The champion and prediction shown equal the API's at that moment. A
    // bar may land between the two reads: then read both again.
    let same = false;
    let last = '';
    for (let i = 0; i < 20 && !same; i++) {
      const got = await page.evaluate(async () => {
        const shown = [...document.querySelectorAll('.symbol-card tr.pred')].map((r) => ({
          symbol: r.dataset.symbol, horizon_bars: Number(r.dataset.horizon), model: r.dataset.model,
          predicted_price: Number(r.dataset.predictedPrice), made_at_ms: Number(r.dataset.madeAt),
        }));
        const api = (await (await fetch('/api/predictions', { cache: 'no-store' })).json()).map((p) => ({
          symbol: p.symbol, horizon_bars: p.horizon_bars, model: p.model,
          predicted_price: p.predicted_price, made_at_ms: p.made_at_ms,
        }));
        const key = (p) => `${p.symbol}/${p.horizon_bars}`;
        shown.sort((a, b) => key(a).localeCompare(key(b)));
        api.sort((a, b) => key(a).localeCompare(key(b)));
        return { shown, api };
      });
      same = got.shown.length > 0 && JSON.stringify(got.shown) === JSON.stringify(got.api);
      last = JSON.stringify(got);
      if (!same) await page.waitForTimeout(250);
    }
    if (!same) throw new Error(`shown predictions differ from /api/predictions: ${last}`);
    log({ check: 'champion and prediction shown equal /api/predictions' });
    check('overview');
    await shot('overview');

    // Symbol: the price chart grows while ticks flow.
    await open(`#/symbol/${symbols[0]}`);
    await page.waitForSelector('#price canvas');
    const read = () => page.evaluate(() => {
      const el = document.querySelector('#price');
      return { points: Number(el.dataset.points), lastEnd: Number(el.dataset.lastEnd) };
    });
    const before = await read();
    await page.waitForFunction((b) => {
      const el = document.querySelector('#price');
      return Number(el.dataset.points) > b.points && Number(el.dataset.lastEnd) > b.lastEnd;
    }, before, { timeout: WAIT });
    const after = await read();
    log({ check: 'price chart grows', before, after });
    await page.waitForSelector('#rmse canvas');
    check('symbol');
    await shot('symbol');

    await open('#/models');
    await page.waitForSelector('#board tbody tr[data-model]');
    check('models');
    await shot('models');

    // Let the 2-second data-quality sampler and the commits collect a few
    // points, so the time-series charts below have something to show.
    const sampled = Date.now() + 40_000;
    for (;;) {
      const q = await (await fetch(`${base}/api/quality`)).json();
      if (q.samples.length >= 8) break;
      if (Date.now() > sampled) throw new Error(`only ${q.samples.length} quality samples after 40 s`);
      await new Promise((r) => setTimeout(r, 500));
    }

    await open('#/jobs');
    await page.waitForSelector('#runs tbody tr');
    check('jobs');
    await shot('jobs');

    await open('#/quality');
    await page.waitForSelector('#parts tbody tr');
    await page.waitForSelector('#tput canvas');
    check('quality');
    await shot('quality');
    log({ check: 'no console errors or failed requests' });

    // Without EventSource the page polls, and the chart still moves.
    const polling = await context.newPage();
    polling.setDefaultTimeout(WAIT);
    polling.on('pageerror', (e) => problems.push(`page error (polling): ${e.message}`));
    await polling.addInitScript(() => { delete window.EventSource; });
    await polling.goto(`${base}/#/symbol/${symbols[0]}`);
    await polling.waitForSelector('#live[data-mode="polling"]');
    await polling.waitForSelector('#price canvas');
    const end0 = Number(await polling.getAttribute('#price', 'data-last-end'));
    await polling.waitForFunction((e) => Number(document.querySelector('#price').dataset.lastEnd) > e, end0);
    check('polling fallback');
    log({ check: 'polling fallback updates the chart without SSE' });
  } catch (e) {
    console.error(String(e.stack || e));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
