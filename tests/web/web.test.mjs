// web.test.mjs - edmd's web page in a real browser: headless Chromium (Debian's chromium)
// driven by playwright-core, against daemons started by test_web.sh.
//
// Environment:
//   WEB_URL      the page (edmd itself, or devserver.mjs in development)
//   API_URL      the daemon's API, for comparing what the page shows with GET /v1/jobs/{id}
//   COND_MODEL   id of a conditional model served there (label_dim > 0); RGB_MODEL: a 3-channel one
//   MNIST_MODEL  id of the bundled MNIST model there, for "draw half a seven" (empty: skipped)
//   KEY_WEB_URL, KEY_API_URL, API_KEY   (optional) a daemon that has an API key
//   OUT_DIR      where screenshots go
//   CHROMIUM     the browser (default /usr/bin/chromium)
// Prints "PASS: ..." / "FAIL: ..." lines and a closing "N passed, N failed, N skipped".
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = process.env;
const WEB_URL = env.WEB_URL;
const API_URL = env.API_URL || WEB_URL;
const OUT_DIR = env.OUT_DIR || 'build/web';
const COND = env.COND_MODEL || 'cond';
const RGB = env.RGB_MODEL || 'rgb';
const MNIST = env.MNIST_MODEL || '';
const CHROMIUM = env.CHROMIUM || '/usr/bin/chromium';
const T = { pass: 0, fail: 0, skip: 0 };

function pass(desc) { T.pass++; console.log('PASS: ' + desc); }
function fail(desc, detail) { T.fail++; console.log('FAIL: ' + desc + (detail === undefined ? '' : ': ' + detail)); }
function skip(desc) { T.skip++; console.log('SKIP: ' + desc); }
function check(desc, cond, detail) { if (cond) pass(desc); else fail(desc, detail); }
function eq(desc, got, want) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g === w) pass(desc); else fail(desc, 'got ' + g + ', want ' + w);
}
function finish() {
  console.log(T.pass + ' passed, ' + T.fail + ' failed, ' + T.skip + ' skipped');
  process.exit(T.fail ? 1 : 0);
}

const deadline = setTimeout(() => { fail('the browser test finished in time (50 s)'); finish(); }, 50000);

async function apiGet(base, p, key) {
  const r = await fetch(new URL(p, base), { headers: key ? { Authorization: 'Bearer ' + key } : {} });
  return { status: r.status, body: await r.json() };
}

/* "8x8" PNG facts from the bytes: signature, IHDR width/height/colour type */
function pngFacts(buf) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (buf.length < 33 || !sig.every((b, i) => buf[i] === b)) return null;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20), depth: buf[24], colorType: buf[25] };
}

/* Per-page watchdogs: console errors, page errors, and any request that leaves the daemon. */
function watch(page, allowedOrigins) {
  const w = { errors: [], external: [] };
  page.on('pageerror', (e) => w.errors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !w.expectErrors) w.errors.push('console: ' + m.text());
  });
  page.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('data:') || u.startsWith('blob:')) return;
    if (!allowedOrigins.some((o) => u.startsWith(o))) w.external.push(u);
  });
  return w;
}

const RECORDER = () => {
  /* records every value the progress figures take, to see the progress move */
  window.__seen = { steps: [], pct: [] };
  const start = () => {
    const s = document.getElementById('steps-done');
    const p = document.getElementById('progress');
    if (!s || !p) return;
    new MutationObserver(() => window.__seen.steps.push(s.textContent)).observe(s, { childList: true, characterData: true, subtree: true });
    new MutationObserver(() => window.__seen.pct.push(p.value)).observe(p, { attributes: true });
    const set = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value').set;
    Object.defineProperty(p, 'value', {
      get() { return Number(p.getAttribute('value')); },
      set(v) { window.__seen.pct.push(Number(v)); set.call(p, v); },
    });
  };
  document.addEventListener('DOMContentLoaded', start);
};

async function readShown(page) {
  return page.evaluate(() => {
    const t = (id) => document.querySelector('[data-testid="' + id + '"]').textContent.trim();
    const cards = [...document.querySelectorAll('[data-testid="image-card"]')].map((c) => {
      const img = c.querySelector('img');
      const dl = c.querySelector('[data-testid="image-download"]');
      return {
        index: Number(c.dataset.index),
        seed: c.querySelector('[data-testid="image-seed"]').textContent.trim(),
        cls: c.querySelector('[data-testid="image-class"]').textContent.trim(),
        nfe: c.querySelector('[data-testid="image-nfe"]').textContent.trim(),
        complete: img.complete,
        naturalWidth: img.naturalWidth,
        naturalHeight: img.naturalHeight,
        shownWidth: img.getBoundingClientRect().width,
        rendering: getComputedStyle(img).imageRendering,
        href: dl.href,
        download: dl.getAttribute('download'),
      };
    });
    return {
      jobId: t('job-id'), model: t('result-model'), steps: t('result-steps'), nfe: t('result-nfe'),
      queue: t('timing-queue'), sampling: t('timing-sampling'), encode: t('timing-encode'), total: t('timing-total'),
      stepsDone: t('steps-done'), stepsTotal: t('steps-total'), nfeDone: t('nfe-done'), nfeTotal: t('nfe-total'),
      pct: t('progress-pct'), progressValue: document.getElementById('progress').value,
      jobState: t('job-state'), cards, seen: window.__seen,
      error: document.querySelector('[data-testid="error"]').hidden ? null : t('error'),
    };
  });
}

/* the bytes behind a blob: link, read inside the page */
async function blobBytes(page, href) {
  const arr = await page.evaluate(async (h) => [...new Uint8Array(await (await fetch(h)).arrayBuffer())], href);
  return Uint8Array.from(arr);
}

const fmtMs = (v) => (Math.round(v * 10) / 10).toFixed(1) + ' ms';

async function main() {
  if (!WEB_URL) { fail('WEB_URL set'); finish(); }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'edm-web-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 375, height: 812 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    acceptDownloads: true,
  });
  try {
    await context.addInitScript(RECORDER);
    await scenarioGenerate(context);
    await scenarioErrorAndCancel(context);
    if (MNIST) await scenarioDrawSeven(context);
    else skip('draw half a seven (no MNIST_MODEL)');
    if (env.KEY_WEB_URL) await scenarioApiKey(context);
    else skip('API key scenario (no KEY_WEB_URL)');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function scenarioGenerate(context) {
  const page = await context.newPage();
  const origin = new URL(WEB_URL).origin;
  const w = watch(page, [origin]);
  const resp = await page.goto(WEB_URL, { waitUntil: 'load' });
  eq('GET / answers 200', resp.status(), 200);
  check('GET / is HTML', (resp.headers()['content-type'] || '').startsWith('text/html'), resp.headers()['content-type']);
  await page.waitForSelector('#model option', { state: 'attached', timeout: 10000 });
  const models = (await apiGet(API_URL, '/v1/models')).body.data;
  const shownModels = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  eq('model list = GET /v1/models', shownModels, models.map((m) => m.id));
  check('server state says ready', /ready/.test(await page.textContent('[data-testid="server-state"]')));
  check('API key field hidden without keys', await page.isHidden('[data-testid="key-box"]'));
  const cond = models.find((m) => m.id === COND);
  if (!cond) { fail('conditional model ' + COND + ' served'); return; }

  await page.selectOption('[data-testid="model"]', COND);
  const classes = await page.$$eval('#class_label option', (os) => os.map((o) => o.value));
  eq('class choices = random + 0..label_dim-1', classes, ['', ...Array.from({ length: cond.label_dim }, (_, i) => String(i))]);
  await page.selectOption('[data-testid="class"]', '1');
  await page.fill('[data-testid="n"]', '2');
  await page.fill('[data-testid="steps"]', '4');
  await page.fill('[data-testid="seed"]', '42');
  check('NFE estimate shown', /7 network evaluations per image/.test(await page.textContent('[data-testid="nfe-estimate"]')));
  /* accessible names: every form control has a label */
  const unlabeled = await page.$$eval('#gen-form input, #gen-form select', (els) =>
    els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id));
  eq('every form control has a label', unlabeled, []);

  const jobResp = page.waitForResponse((r) => r.url().endsWith('/v1/jobs') && r.request().method() === 'POST');
  const eventsReq = page.waitForRequest((r) => /\/v1\/jobs\/[^/]+\/events$/.test(r.url()), { timeout: 10000 }).catch(() => null);
  await page.click('[data-testid="generate"]');
  const jr = await jobResp;
  eq('POST /v1/jobs answers 202', jr.status(), 202);
  const posted = JSON.parse(jr.request().postData());
  eq('request body', posted, { model: COND, n: 2, seed: 42, class_label: 1, steps: 4 });
  check('the page follows the job\'s event stream', await eventsReq);
  await page.waitForSelector('[data-testid="result"][data-loaded="true"]', { timeout: 30000 });
  const shown = await readShown(page);

  const api = await apiGet(API_URL, '/v1/jobs/' + shown.jobId);
  eq('GET /v1/jobs/{id} of the shown job', api.status, 200);
  const job = api.body;
  const r = job.result;
  eq('job completed', job.status, 'completed');
  eq('shown job state', shown.jobState.toLowerCase(), 'completed');
  eq('shown model = API', shown.model, r.model);
  eq('shown steps = API', shown.steps, String(r.steps));
  eq('shown NFE per image = API', shown.nfe, String(r.nfe));
  eq('NFE = 2*steps-1 (Heun)', r.nfe, 7);
  eq('shown timings = API', [shown.queue, shown.sampling, shown.encode, shown.total],
    [fmtMs(r.timings.queue_ms), fmtMs(r.timings.sampling_ms), fmtMs(r.timings.encode_ms), fmtMs(r.timings.total_ms)]);
  eq('two images shown', shown.cards.length, 2);
  eq('shown seeds = API', shown.cards.map((c) => c.seed), r.data.map((d) => String(d.seed)));
  eq('seeds are seed, seed+1', r.data.map((d) => d.seed), [42, 43]);
  eq('shown classes = API', shown.cards.map((c) => c.cls), r.data.map((d) => String(d.class_label)));
  eq('class is the chosen one', r.data.map((d) => d.class_label), [1, 1]);
  eq('shown per-image NFE = API', shown.cards.map((c) => c.nfe), r.data.map((d) => String(d.nfe)));
  /* progress reached 100%, and moved through the steps */
  eq('progress bar at 100', shown.progressValue, 100);
  eq('progress text 100%', shown.pct, '100%');
  eq('shown steps done = API progress', [shown.stepsDone, shown.stepsTotal], [String(job.progress.steps_done), String(job.progress.steps)]);
  eq('shown NFE done = API progress', [shown.nfeDone, shown.nfeTotal], [String(job.progress.nfe_done), String(job.progress.nfe_total)]);
  eq('API progress complete', [job.progress.steps_done, job.progress.nfe_done], [4, 14]);
  const stepsSeen = [...new Set(shown.seen.steps)];
  check('progress went through every step', ['1', '2', '3', '4'].every((s) => stepsSeen.includes(s)), JSON.stringify(stepsSeen));
  /* the images: decoded by the browser at the model's resolution, and the very bytes of the API */
  for (const c of shown.cards) {
    check('image ' + c.index + ' decoded', c.complete && c.naturalWidth > 0);
    eq('image ' + c.index + ' natural size = model resolution', [c.naturalWidth, c.naturalHeight], [cond.resolution, cond.resolution]);
    check('image ' + c.index + ' upscaled on screen', c.shownWidth >= 100, c.shownWidth);
    eq('image ' + c.index + ' pixelated', c.rendering, 'pixelated');
    check('image ' + c.index + ' has a download link', c.href.startsWith('blob:') && /\.png$/.test(c.download || ''), c.href + ' ' + c.download);
    const bytes = await blobBytes(page, c.href);
    const facts = pngFacts(bytes);
    eq('download ' + c.index + ' is a PNG of the model\'s shape', facts && [facts.width, facts.height, facts.colorType],
      [cond.resolution, cond.resolution, cond.channels === 1 ? 0 : 2]);
    const b64 = r.data[c.index].b64_json;
    check('download ' + c.index + ' = the API\'s PNG', b64 && Buffer.from(bytes).equals(Buffer.from(b64, 'base64')));
  }
  /* a real download through the link */
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 5000 }), page.click('[data-testid="image-download"] >> nth=0')]);
  eq('download file name', dl.suggestedFilename(), 'edm_' + COND + '_seed42_class1_4steps.png');
  const saved = path.join(OUT_DIR, dl.suggestedFilename());
  await dl.saveAs(saved);
  const sf = pngFacts(fs.readFileSync(saved));
  eq('downloaded file is the PNG', sf && [sf.width, sf.height], [cond.resolution, cond.resolution]);

  /* phone layout: nothing wider than the screen */
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check('no horizontal scrolling at 375 px', overflow <= 0, overflow + ' px too wide');
  const tooWide = await page.$$eval('main *', (els) => els.filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map((e) => e.id || e.tagName).slice(0, 5));
  eq('no element past the right edge', tooWide, []);
  await page.screenshot({ path: path.join(OUT_DIR, 'phone-375x812.png') });
  await page.screenshot({ path: path.join(OUT_DIR, 'phone-375-full.png'), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT_DIR, 'desktop-1100.png'), fullPage: true });
  eq('no errors in the page', w.errors, []);
  eq('no request leaves the daemon', w.external, []);
  await page.close();
}

/* a new page on WEB_URL with its watchdogs, once the model list is in */
async function openPage(context) {
  const page = await context.newPage();
  const w = watch(page, [new URL(WEB_URL).origin]);
  await page.goto(WEB_URL);
  await page.waitForSelector('#model option', { state: 'attached', timeout: 10000 });
  return { page, w };
}

async function scenarioErrorAndCancel(context) {
  const { page, w } = await openPage(context);
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });

  /* a result first, to see that a failed request clears it */
  await page.selectOption('[data-testid="model"]', COND);
  await page.fill('[data-testid="n"]', '1');
  await page.fill('[data-testid="steps"]', '2');
  await page.click('[data-testid="generate"]');
  await page.waitForSelector('[data-testid="result"][data-loaded="true"]', { timeout: 20000 });
  pass('a result to replace');

  /* an error of the API (a noise range the page cannot judge), shown with its code and field */
  w.expectErrors = true; /* the browser logs the 400 to the console */
  await page.evaluate(() => { document.getElementById('advanced').open = true; });
  await page.fill('[data-testid="sigma_min"]', '500');
  await page.click('[data-testid="generate"]');
  await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 10000 });
  const code = await page.textContent('[data-testid="error-code"]');
  const param = await page.textContent('[data-testid="error-param"]').catch(() => '');
  eq('API error code shown', code, 'invalid_parameter');
  eq('API error field shown', param, 'field: sigma_min');
  eq('the field is marked invalid', await page.getAttribute('#sigma_min', 'aria-invalid'), 'true');
  check('the message is under the field', await page.isVisible('.field:has(#sigma_min) [data-testid="field-error"]'));
  eq('the field has the focus', await page.evaluate(() => document.activeElement.id), 'sigma_min');
  check('generate enabled again after the error', await page.isEnabled('[data-testid="generate"]'));
  check('the failed request cleared the old result', await page.isHidden('[data-testid="result"]') &&
    (await page.$$('[data-testid="image-card"]')).length === 0);
  check('and its progress', await page.isHidden('[data-testid="progress-box"]'));
  await page.screenshot({ path: path.join(OUT_DIR, 'phone-error.png') });
  await page.fill('[data-testid="sigma_min"]', '');

  /* the server's limits, from GET /v1/models: the page refuses more before sending */
  const model = (await apiGet(API_URL, '/v1/models')).body.data.find((m) => m.id === COND);
  const lim = model.limits;
  eq('n: max from the server\'s limits', await page.getAttribute('#n', 'max'), String(lim.max_n));
  eq('steps: max from the server\'s limits', await page.getAttribute('#steps', 'max'), String(lim.max_steps));
  check('the limit is shown', (await page.textContent('[data-testid="n-limit"]')).includes(String(lim.max_n)));
  const sent = posts.length;
  for (const [field, value, other] of [['n', lim.max_n + 1, ['steps', '2']], ['steps', lim.max_steps + 1, ['n', '1']]]) {
    await page.fill('[data-testid="' + other[0] + '"]', other[1]);
    await page.fill('[data-testid="' + field + '"]', String(value));
    await page.click('[data-testid="generate"]');
    await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 10000 });
    eq(field + ' past the limit: refused by the page', await page.textContent('[data-testid="error-param"]'), 'field: ' + field);
    check(field + ' past the limit: the message names it', (await page.textContent('[data-testid="error-message"]')).includes(String(value - 1)));
  }
  eq('nothing sent past the limits', posts.length, sent);
  await page.fill('[data-testid="n"]', '1');

  /* a range the page checks itself, from its field's min/max (the parameter table's) */
  await page.fill('[data-testid="steps"]', '4');
  await page.fill('[data-testid="alpha"]', '2');
  await page.click('[data-testid="generate"]');
  await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 10000 });
  eq('page check: field shown', await page.textContent('[data-testid="error-param"]'), 'field: alpha');
  check('page check: the range in the message', /alpha must be a number > 0 and ≤ 1/.test(
    await page.textContent('[data-testid="error-message"]')));
  await page.fill('[data-testid="alpha"]', '');
  eq('nothing sent for the page\'s own checks', posts.length, sent);

  /* cancel: a long job on the RGB model, cancelled after its first progress */
  w.expectErrors = false;
  await page.selectOption('[data-testid="model"]', RGB);
  await page.fill('[data-testid="n"]', '4');
  await page.fill('[data-testid="steps"]', '1000');
  await page.click('[data-testid="generate"]');
  check('error cleared on a new submit', await page.isHidden('[data-testid="error"]'));
  await page.waitForFunction(() => Number(document.getElementById('steps-done').textContent) >= 1, null, { timeout: 15000 });
  check('cancel enabled while running', await page.isEnabled('[data-testid="cancel"]'));
  await page.click('[data-testid="cancel"]');
  await page.waitForFunction(() => /cancelled/i.test(document.getElementById('job-state').textContent), null, { timeout: 10000 });
  const jobId = await page.getAttribute('[data-testid="progress-box"]', 'data-job-id');
  const api = await apiGet(API_URL, '/v1/jobs/' + jobId);
  eq('API says cancelled', api.body.status, 'cancelled');
  check('cancelled job shows the reason', /cancel/i.test(await page.textContent('[data-testid="error"]')));
  await page.screenshot({ path: path.join(OUT_DIR, 'phone-cancelled.png') });
  check('no result shown for the cancelled job', await page.isHidden('[data-testid="result"]'));
  check('progress stopped short', Number(await page.textContent('[data-testid="steps-done"]')) < 1000);
  eq('no errors in the page (error/cancel)', w.errors, []);
  await page.close();
}

/* A PNG (data: or blob: URL) decoded by the page: size, the red channel row by row, and
 * whether every pixel is grey (R = G = B) and opaque. */
async function decodePng(page, url) {
  return page.evaluate(async (u) => {
    const img = new Image();
    img.src = u;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const rows = [];
    let grey = true;
    for (let y = 0; y < c.height; y++) {
      const row = [];
      for (let x = 0; x < c.width; x++) {
        const i = (y * c.width + x) * 4;
        row.push(d[i]);
        grey = grey && d[i] === d[i + 1] && d[i] === d[i + 2] && d[i + 3] === 255;
      }
      rows.push(row);
    }
    return { w: c.width, h: c.height, rows, grey };
  }, url);
}

const inked = (rows, lo, hi, level = 128) => rows.slice(lo, hi).flat().filter((v) => v >= level).length;

/* Draws a stroke through points (fractions of the canvas) with touch pointer events, through
 * the DevTools protocol (Playwright's touchscreen only taps). */
/* a straight mouse stroke between two points (fractions of the canvas) */
async function mouseStroke(page, box, [x0, y0], [x1, y1]) {
  await page.mouse.move(box.x + x0 * box.width, box.y + y0 * box.height);
  await page.mouse.down();
  await page.mouse.move(box.x + x1 * box.width, box.y + y1 * box.height, { steps: 12 });
  await page.mouse.up();
}

async function touchStroke(page, box, pts) {
  const cdp = await page.context().newCDPSession(page);
  const at = ([fx, fy]) => [{ x: box.x + fx * box.width, y: box.y + fy * box.height, id: 1 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(pts[0]) });
  for (const p of pts.slice(1)) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(p) });
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

/* "Draw half a seven, let the model finish it": on the bundled MNIST model, the top half of
 * a 7 drawn with pointer events (the bar with the mouse, the diagonal by touch), "Mask lower
 * half", strength 1 by keyboard, class 7. Checks the request's PNGs; when the server takes
 * init_image (a 202, not a 400 naming the field), the result: the kept half pixel for pixel,
 * ink in the repainted half, progress through the steps, and "Use as input". */
async function scenarioDrawSeven(context) {
  const { page, w } = await openPage(context);
  const mnist = (await apiGet(API_URL, '/v1/models')).body.data.find((m) => m.id === MNIST);
  if (!mnist) { fail('MNIST model ' + MNIST + ' served'); await page.close(); return; }
  const R = mnist.resolution;
  await page.selectOption('[data-testid="model"]', MNIST);
  await page.selectOption('[data-testid="class"]', '7');
  await page.fill('[data-testid="n"]', '3');
  await page.fill('[data-testid="steps"]', '18');
  await page.fill('[data-testid="seed"]', '1');
  await page.click('#start-image > summary');
  eq('canvas: off until used', await page.textContent('[data-testid="init-state"]'), '(off)');
  eq('canvas: previews at the model\'s resolution', await page.$eval('#draw-preview-image', (c) => [c.width, c.height]), [R, R]);

  const cv = page.locator('[data-testid="draw-canvas"]');
  await cv.scrollIntoViewIfNeeded();
  const box = await cv.boundingBox();
  check('canvas: shown at a comfortable size', box.width >= 250 && Math.abs(box.width - box.height) < 1, JSON.stringify(box));
  /* the bar of the 7 with the mouse, the upper part of its diagonal by touch */
  await mouseStroke(page, box, [0.28, 0.24], [0.72, 0.23]);
  await touchStroke(page, box, Array.from({ length: 11 }, (_, i) => [0.72 - 0.013 * i, 0.24 + 0.022 * i]));
  eq('canvas: drawing turns it on', await page.textContent('[data-testid="init-state"]'), '(on: image)');
  await page.click('[data-testid="mask-lower"]');
  eq('canvas: the mask is on', await page.textContent('[data-testid="init-state"]'), '(on: image + mask)');
  eq('strength follows the mask default (1)', await page.inputValue('[data-testid="init-strength"]'), '1');
  /* keyboard: the slider down a step and back to its end */
  await page.focus('[data-testid="init-strength"]');
  await page.keyboard.press('ArrowLeft');
  eq('strength by keyboard', await page.inputValue('[data-testid="init-strength"]'), '0.99');
  await page.keyboard.press('End');
  eq('strength 1 by keyboard', await page.inputValue('[data-testid="init-strength"]'), '1');
  if (await page.$('#gen-form [data-param][name="strength"]')) {
    eq('the form\'s strength field follows the slider', await page.inputValue('#gen-form [name="strength"]'), '1');
    /* a value typed there out of range is the page's error, shown at the field inside both sections */
    await page.click('#image-settings > summary');
    await page.fill('#gen-form [name="strength"]', '2');
    await page.evaluate(() => { document.getElementById('start-image').open = false; });
    await page.click('[data-testid="generate"]');
    await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 10000 });
    eq('strength 2: refused at the field', await page.textContent('[data-testid="error-param"]'), 'field: strength');
    eq('strength 2: the field has the focus, its sections open', await page.evaluate(() =>
      [document.activeElement.name, document.getElementById('start-image').open, document.getElementById('image-settings').open]),
    ['strength', true, true]);
    await page.fill('#gen-form [name="strength"]', '1');
    await page.click('#image-settings > summary');
  } else {
    skip('the form\'s strength field (this page has none)');
  }
  const unlabeled = await page.$$eval('#start-image input, #start-image button', (els) =>
    els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map((e) => e.id));
  eq('canvas: every control has a label', unlabeled, []);
  await page.locator('#start-image').screenshot({ path: path.join(OUT_DIR, 'draw-seven-input.png') });

  w.expectErrors = true; /* a server without init_image answers 400, which the browser logs */
  const jobResp = page.waitForResponse((r) => r.url().endsWith('/v1/jobs') && r.request().method() === 'POST');
  await page.click('[data-testid="generate"]');
  const jr = await jobResp;
  const posted = JSON.parse(jr.request().postData());
  eq('draw: request fields', Object.keys(posted).sort(),
    ['class_label', 'init_image', 'mask', 'model', 'n', 'seed', 'steps', 'strength']);
  eq('draw: request values', [posted.model, posted.class_label, posted.n, posted.seed, posted.steps, posted.strength],
    [MNIST, 7, 3, 1, 18, 1]);
  check('draw: init_image and mask are PNG data URLs',
    [posted.init_image, posted.mask].every((u) => typeof u === 'string' && u.startsWith('data:image/png;base64,')));
  for (const [name, u] of [['init', posted.init_image], ['mask', posted.mask]])
    fs.writeFileSync(path.join(OUT_DIR, 'draw-seven-' + name + '.png'), Buffer.from(u.split(',')[1], 'base64'));
  const init = await decodePng(page, posted.init_image);
  const mask = await decodePng(page, posted.mask);
  eq('init image: the model\'s resolution', [init.w, init.h], [R, R]);
  eq('mask: the model\'s resolution', [mask.w, mask.h], [R, R]);
  check('init image and mask are grey and opaque (a 1-channel model)', init.grey && mask.grey);
  const half = Math.floor(R / 2);
  eq('mask: top half black (kept)', mask.rows.slice(0, half).flat().filter((v) => v !== 0).length, 0);
  eq('mask: lower half white (repainted)', mask.rows.slice(half).flat().filter((v) => v !== 255).length, 0);
  const bar = init.rows[Math.round(0.235 * R)];
  const barInk = bar.map((v, x) => (v >= 128 ? x : -1)).filter((x) => x >= 0);
  check('init image: the bar is drawn across', barInk.length >= R * 0.35 && barInk[0] <= R * 0.33 && barInk.at(-1) >= R * 0.67,
    JSON.stringify(bar));
  check('init image: the diagonal is drawn (ink below the bar, right of the middle)',
    inked(init.rows.slice(Math.round(0.35 * R), Math.round(0.45 * R)).map((r) => r.slice(half)), 0, R) >= 3);
  eq('init image: nothing drawn in the lower half', inked(init.rows, Math.ceil(0.55 * R), R, 1), 0);
  check('init image: antialiased edges (grey levels)', init.rows.flat().some((v) => v > 0 && v < 255));

  if (jr.status() === 400) {
    const err = await jr.json().catch(() => ({}));
    skip('draw: the finished seven (this server does not take init_image yet: ' + JSON.stringify(err.error) + ')');
    await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: 10000 });
    check('draw: the 400 is shown', /init_image|mask|strength/.test(await page.textContent('[data-testid="error"]')));
    await checkCanvasTools(page, R);
    eq('no errors in the page (draw)', w.errors, []);
    await page.close();
    return;
  }
  eq('draw: POST /v1/jobs answers 202', jr.status(), 202);
  await page.waitForSelector('[data-testid="result"][data-loaded="true"]', { timeout: 30000 });
  const shown = await readShown(page);
  eq('draw: job completed', shown.jobState.toLowerCase(), 'completed');
  eq('draw: progress 100%', shown.pct, '100%');
  const stepsSeen = [...new Set(shown.seen.steps)].map(Number).filter((v) => v > 0);
  check('draw: progress shown step by step', stepsSeen.length >= 3 && stepsSeen.includes(18), JSON.stringify(stepsSeen));
  const job = (await apiGet(API_URL, '/v1/jobs/' + shown.jobId)).body;
  eq('draw: NFE 2N-1 at strength 1', job.result.nfe, 35);
  eq('draw: three images of class 7', shown.cards.map((c) => c.cls), ['7', '7', '7']);
  for (const c of shown.cards) {
    const out = await decodePng(page, c.href);
    const changed = [];
    for (let y = 0; y < half; y++) for (let x = 0; x < R; x++) if (out.rows[y][x] !== init.rows[y][x]) changed.push([y, x]);
    eq('draw: image ' + c.index + ': the kept top half is the drawing, pixel for pixel', changed.slice(0, 5), []);
    check('draw: image ' + c.index + ': the model drew in the lower half', inked(out.rows, half, R) >= 6, inked(out.rows, half, R));
  }
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.locator('#start-image').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(OUT_DIR, 'draw-seven-desktop.png'), fullPage: true });

  /* "Use as input": the result back in the canvas, exported as exactly its pixels */
  const first = await decodePng(page, shown.cards[0].href);
  await page.click('[data-testid="image-use"] >> nth=0');
  await page.waitForFunction(() => /result loaded/.test(document.getElementById('draw-note').textContent), null, { timeout: 5000 });
  const again = await page.evaluate(() => window.edmStartImage.requestFields());
  eq('use as input: the canvas exports the result exactly', (await decodePng(page, again.init_image)).rows, first.rows);
  check('use as input: the mask stays', typeof again.mask === 'string');
  await checkCanvasTools(page, R);
  eq('no errors in the page (draw)', w.errors.filter((e) => !/status of 400/.test(e)), []);
  eq('no request leaves the daemon (draw)', w.external, []);
  await page.close();
}

/* The canvas's other tools on the page of scenarioDrawSeven: load a file, invert and clear the
 * mask, the eraser, the switch; then a desktop-width screenshot of the section. */
async function checkCanvasTools(page, R) {
  const fields = () => page.evaluate(() => window.edmStartImage.requestFields());
  const half = Math.floor(R / 2);
  /* a file at the model's resolution is drawn in blocks and exports as itself */
  const file = path.join(OUT_DIR, 'draw-seven-init.png');
  await page.setInputFiles('[data-testid="draw-file"]', file);
  await page.waitForFunction(() => /loaded/.test(document.getElementById('draw-note').textContent) &&
    /draw-seven-init/.test(document.getElementById('draw-note').textContent), null, { timeout: 5000 });
  eq('load image: the note names it', await page.textContent('[data-testid="draw-note"]'),
    'draw-seven-init.png (' + R + '×' + R + ') loaded');
  const loaded = await decodePng(page, (await fields()).init_image);
  const want = await decodePng(page, 'data:image/png;base64,' + fs.readFileSync(file).toString('base64'));
  eq('load image: a file of the model\'s size exports as itself', loaded.rows, want.rows);
  await page.click('[data-testid="mask-invert"]');
  const inv = await decodePng(page, (await fields()).mask);
  eq('invert mask: top white, bottom black', [inv.rows[0][0], inv.rows[half - 1][R - 1], inv.rows[half][0], inv.rows[R - 1][R - 1]],
    [255, 255, 0, 0]);
  await page.click('[data-testid="mask-clear"]');
  eq('clear mask: image only', await page.textContent('[data-testid="init-state"]'), '(on: image)');
  check('clear mask: no mask sent', (await fields()).mask === undefined);
  /* the eraser on the image: a stroke over the bar takes ink away */
  await page.check('[data-testid="draw-eraser"]');
  const cv = page.locator('[data-testid="draw-canvas"]');
  await cv.scrollIntoViewIfNeeded();
  const box = await cv.boundingBox();
  await mouseStroke(page, box, [0.1, 0.24], [0.9, 0.24]);
  const erased = await decodePng(page, (await fields()).init_image);
  check('eraser: ink taken away', inked(erased.rows, 0, R) < inked(loaded.rows, 0, R), inked(erased.rows, 0, R));
  await page.uncheck('[data-testid="draw-eraser"]');
  await page.uncheck('[data-testid="init-use"]');
  eq('switched off: no fields for the request', await fields(), null);
  eq('switched off: shown', await page.textContent('[data-testid="init-state"]'), '(off)');
  if (await page.$('#gen-form [data-param][name="strength"]'))
    eq('switched off: the form\'s strength field emptied', await page.inputValue('#gen-form [name="strength"]'), '');
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.locator('#start-image').screenshot({ path: path.join(OUT_DIR, 'draw-desktop.png') });
}

async function scenarioApiKey(context) {
  const page = await context.newPage();
  const w = watch(page, [new URL(env.KEY_WEB_URL).origin]);
  w.expectErrors = true; /* the unauthenticated probe logs a 401 */
  await page.goto(env.KEY_WEB_URL);
  await page.waitForSelector('[data-testid="key-box"]:not([hidden])', { timeout: 10000 });
  pass('API key field shown when the server has keys');
  await page.fill('[data-testid="api-key"]', env.API_KEY);
  await page.click('[data-testid="api-key-save"]');
  await page.waitForSelector('#model option', { state: 'attached', timeout: 10000 });
  eq('key kept in localStorage', await page.evaluate(() => localStorage.getItem('edmd.apiKey')), env.API_KEY);
  await page.fill('[data-testid="n"]', '1');
  await page.fill('[data-testid="steps"]', '3');
  await page.click('[data-testid="generate"]');
  await page.waitForSelector('[data-testid="result"][data-loaded="true"]', { timeout: 20000 });
  const shown = await readShown(page);
  const api = await apiGet(env.KEY_API_URL, '/v1/jobs/' + shown.jobId, env.API_KEY);
  eq('with a key: job completed', api.body.status, 'completed');
  eq('with a key: shown seed = API', shown.cards.map((c) => c.seed), api.body.result.data.map((d) => String(d.seed)));
  eq('with a key: progress 100%', shown.pct, '100%');
  check('with a key: image decoded', shown.cards.length === 1 && shown.cards[0].naturalWidth > 0);
  /* a reload finds the stored key and needs no typing */
  await page.reload();
  await page.waitForSelector('#model option', { state: 'attached', timeout: 10000 });
  pass('stored key used after a reload');
  eq('no request leaves the daemon (key)', w.external, []);
  await page.close();
}

main().then(() => { clearTimeout(deadline); finish(); }, (e) => {
  fail('browser test ran to the end', e && e.stack ? e.stack.split('\n').slice(0, 4).join(' | ') : String(e));
  finish();
});
