/*
 * app.js - the web page of edmd: a form over POST /v1/jobs, per-step progress from the job's
 * event stream, and the images with their seed, class, NFE and the job's timings.
 *
 * Plain JavaScript, no framework, no build step, nothing fetched from anywhere but the
 * daemon. Every API path is relative to the page, so the page also works behind a proxy
 * that mounts edmd under a prefix.
 *
 * API keys: a browser EventSource cannot send an Authorization header, and neither can an
 * <img src>. So when the server wants a key (GET /v1/models answered 401) the page shows
 * the key field, follows the events with fetch() and a small SSE parser, and loads the
 * images with fetch() into blob: URLs. Without a key it uses EventSource; the images are
 * fetched as blobs either way (that also gives the download links a file to save).
 * If the event stream breaks, the page falls back to polling GET /v1/jobs/{id}.
 *
 * Limits: the page asks for no more than the server gives. Each model of GET /v1/models
 * carries the server's limits (max_n, max_steps) and every sampler setting's range; the form's
 * n and steps take their max from them, so the page refuses what the server would refuse
 * before sending anything. A request that fails clears the result shown before it, so an
 * error never sits above images that are not its request's.
 *
 * Starting from an image: canvas.js (window.edmStartImage) holds the drawing and its mask;
 * buildRequest adds its init_image / mask / strength while it is in use, and each result
 * image gets a "Use as input" button that draws it back into the canvas.
 */
'use strict';

(function () {
  const KEY_STORE = 'edmd.apiKey';
  const $ = (id) => document.getElementById(id);

  const state = {
    models: [],
    apiKey: localStorage.getItem(KEY_STORE) || '',
    needsKey: false,
    job: null,        // the job being followed: {id, ...}
    stream: null,     // {close()} of the event stream
    pollTimer: 0,
    blobUrls: [],
  };

  /* ---- API ------------------------------------------------------------------------------ */

  class ApiError extends Error {
    constructor(status, code, message, param) {
      super(message);
      this.status = status;
      this.code = code;
      this.param = param;
    }
  }

  function authHeaders() {
    return state.apiKey ? { Authorization: 'Bearer ' + state.apiKey } : {};
  }

  /* fetch a JSON endpoint; throws ApiError with the API's {"error": {code, message, param}} */
  async function api(path, opts = {}) {
    const headers = Object.assign({ Accept: 'application/json' }, opts.noAuth ? {} : authHeaders(),
      opts.headers || {});
    let resp;
    try {
      resp = await fetch(path, Object.assign({}, opts, { headers }));
    } catch (e) {
      throw new ApiError(0, 'network_error', 'cannot reach the server (' + e.message + ')', null);
    }
    let body = null;
    const text = await resp.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!resp.ok) {
      const err = body && body.error;
      if (err && typeof err === 'object') throw new ApiError(resp.status, err.code, err.message, err.param);
      throw new ApiError(resp.status, 'http_' + resp.status, text.slice(0, 200) || resp.statusText, null);
    }
    return body;
  }

  /* ---- messages ------------------------------------------------------------------------- */

  function showError(err) {
    const box = $('error');
    box.textContent = '';
    if (!err) {
      box.hidden = true;
      return;
    }
    const code = document.createElement('b');
    code.dataset.testid = 'error-code';
    code.textContent = err.code || 'error';
    const msg = document.createElement('span');
    msg.dataset.testid = 'error-message';
    msg.textContent = ' ' + (err.message || String(err));
    box.append(code, msg);
    if (err.status) {
      const st = document.createElement('span');
      st.className = 'muted';
      st.textContent = ' (HTTP ' + err.status + ')';
      box.append(st);
    }
    let input = null;
    if (err.param) {
      const p = document.createElement('span');
      p.className = 'param';
      p.dataset.testid = 'error-param';
      p.textContent = 'field: ' + err.param;
      box.append(document.createElement('br'), p);
      input = document.querySelector('#gen-form [name="' + CSS.escape(err.param) + '"]');
    }
    box.hidden = false;
    if (input) {
      /* the message also goes under the field itself, which gets the focus */
      input.setAttribute('aria-invalid', 'true');
      const note = document.createElement('p');
      note.className = 'field-error';
      note.id = 'field-error-' + input.id;
      note.dataset.testid = 'field-error';
      note.textContent = err.message || '';
      input.closest('.field').append(note);
      input.setAttribute('aria-describedby', note.id);
      /* every section around the field open (strength sits in a section within a section) */
      for (let d = input.closest('details'); d; d = d.parentElement.closest('details')) d.open = true;
      input.focus();
      input.scrollIntoView({ block: 'center' });
    } else {
      box.scrollIntoView({ block: 'nearest' });
    }
  }

  function clearInvalid() {
    document.querySelectorAll('#gen-form [aria-invalid]').forEach((el) => {
      el.removeAttribute('aria-invalid');
      el.removeAttribute('aria-describedby');
    });
    document.querySelectorAll('#gen-form .field-error').forEach((el) => el.remove());
  }

  function setServerState(text, cls) {
    const el = $('server-state');
    el.textContent = text;
    el.className = cls || '';
  }

  /* ---- models and the form -------------------------------------------------------------- */

  async function loadModels() {
    let list;
    try {
      /* first without a key: a 401 tells that this server has API keys */
      if (!state.needsKey) {
        try {
          list = await api('v1/models', { noAuth: true });
        } catch (e) {
          if (e.status !== 401) throw e;
          state.needsKey = true;
        }
      }
      if (state.needsKey) list = await api('v1/models');
    } catch (e) {
      if (e.status === 401) {
        $('key-box').hidden = false;
        setServerState('API key required', 'warn');
        if (state.apiKey) showError(e);
        $('api-key').focus();
        return;
      }
      if (e.code === 'not_ready' || e.status === 0) {
        setServerState(e.code === 'not_ready' ? 'loading models…' : 'server unreachable, retrying…', 'warn');
        setTimeout(loadModels, 1000);
        return;
      }
      setServerState('error', 'bad');
      showError(e);
      return;
    }
    if (state.needsKey) $('key-box').hidden = false; /* keep it visible to change the key */
    showError(null);
    state.models = list.data || [];
    const sel = $('model');
    const previous = sel.value;
    sel.textContent = '';
    for (const m of state.models) {
      const o = document.createElement('option');
      o.value = m.id;
      o.textContent = m.name + (m.default ? ' (default)' : '');
      sel.append(o);
    }
    const keep = state.models.find((m) => m.id === previous) || state.models.find((m) => m.default) || state.models[0];
    if (keep) sel.value = keep.id;
    setServerState(state.models.length ? 'ready · ' + state.models.length + ' model' +
      (state.models.length === 1 ? '' : 's') : 'no models', state.models.length ? 'ok' : 'warn');
    $('generate').disabled = !state.models.length;
    onModelChange();
  }

  function currentModel() {
    return state.models.find((m) => m.id === $('model').value) || null;
  }

  function onModelChange() {
    const m = currentModel();
    const info = $('model-info');
    const cls = $('class_label');
    cls.textContent = '';
    if (!m) {
      info.textContent = '';
      return;
    }
    const fmt = new Intl.NumberFormat();
    info.textContent = m.resolution + '×' + m.resolution + '×' + m.channels + ' · ' +
      (m.label_dim ? m.label_dim + ' classes' : 'unconditional') + ' · ' + m.preconditioner + '/' +
      m.architecture + ' · ' + fmt.format(m.parameters) + ' parameters' +
      (m.description ? ' — ' + m.description : '');
    info.title = m.description || '';
    const random = document.createElement('option');
    random.value = '';
    random.textContent = m.label_dim ? 'random' : 'none';
    random.title = m.label_dim ? 'drawn from each image\'s seed' : 'unconditional model';
    cls.append(random);
    for (let c = 0; c < m.label_dim; c++) {
      const o = document.createElement('option');
      o.value = String(c);
      /* the class's names, when they say more than its number ("7 · seven") */
      const names = (m.class_names && m.class_names[c]) || [];
      const words = names.filter((x) => x !== String(c));
      o.textContent = String(c) + (words.length ? ' · ' + words.join(', ') : '');
      cls.append(o);
    }
    cls.disabled = !m.label_dim;
    $('class-field').classList.toggle('disabled', !m.label_dim);
    if (window.edmStartImage) window.edmStartImage.setModel(m);
    $('steps').placeholder = String(m.default_steps);
    if (!$('steps').dataset.touched) $('steps').value = String(m.default_steps);
    applyLimits(m);
    updateEstimate();
  }

  /* The server's limits as the form's ranges: n up to max_n, steps up to max_steps (the
   * model's sampler.steps.maximum), shown in the fields' hints. */
  function applyLimits(m) {
    const limits = m.limits || {};
    const steps = (m.sampler && m.sampler.steps) || {};
    const maxSteps = steps.maximum !== undefined ? steps.maximum : limits.max_steps;
    for (const [id, max] of [['n', limits.max_n], ['steps', maxSteps]]) {
      if (max === undefined) $(id).removeAttribute('max');
      else $(id).max = String(max);
    }
    $('n-limit').textContent = limits.max_n !== undefined ? '(at most ' + limits.max_n + ')' : '';
    if (limits.max_n !== undefined && intField('n') > limits.max_n) $('n').value = String(limits.max_n);
  }

  function intField(name) {
    const v = $(name).value.trim();
    return v === '' ? null : Number(v);
  }

  /* The sampler's fields: the form controls marked data-param, one per row of the engine's
   * parameter table (index.html says how they describe it). A select is a choice, step="1"
   * an integer, anything else a number. */
  function samplerFields() {
    return Array.from(document.querySelectorAll('#gen-form [data-param]'));
  }

  function samplerValue(el) {
    const v = el.value.trim();
    if (v === '') return null;
    if (el.tagName === 'SELECT') return v;
    if ('inf' in el.dataset && v.toLowerCase() === 'inf') return 'inf';
    return Number(v);
  }

  /* A sampler field's value against its control's range: null, or what a good value is. */
  function samplerRangeError(el, v) {
    if (el.tagName === 'SELECT') return null;
    const integer = el.getAttribute('step') === '1';
    const min = el.getAttribute('min'), max = el.getAttribute('max');
    const open = 'minOpen' in el.dataset, inf = 'inf' in el.dataset;
    let ok = v === 'inf' ? inf : integer ? Number.isInteger(v) : Number.isFinite(v);
    if (ok && v !== 'inf' && min !== null) ok = open ? v > Number(min) : v >= Number(min);
    if (ok && v !== 'inf' && max !== null) ok = v <= Number(max);
    if (ok) return null;
    return (integer ? 'an integer' : 'a number') + (min === null ? '' : (open ? ' > ' : ' ≥ ') + min) +
      (max === null ? '' : ' and ≤ ' + max) + (inf ? ' or "inf"' : '');
  }

  /* The request body: only the fields the user set (null/absent means the server's default). */
  function buildRequest() {
    const body = {};
    body.model = $('model').value || undefined;
    const n = intField('n');
    if (n !== null) body.n = n;
    const seed = $('seed').value.trim();
    if (seed !== '') body.seed = Number(seed);
    const cls = $('class_label').value;
    if (!$('class_label').disabled && cls !== '') body.class_label = Number(cls);
    for (const el of samplerFields()) {
      const v = samplerValue(el);
      if (v !== null) body[el.name] = v;
    }
    addStartImage(body);
    return body;
  }

  /* The canvas's fields, while "Use as the starting image" is on. Its strength slider mirrors
   * the form's strength field where the page has one (so a value typed there, checked by
   * checkRequest, is the one sent); a sigma_start typed into the form says where to start
   * instead (the API takes one of the two). */
  function addStartImage(body) {
    const start = window.edmStartImage && window.edmStartImage.requestFields();
    if (!start) return;
    body.init_image = start.init_image;
    if (start.mask) body.mask = start.mask;
    if (body.sigma_start !== undefined) delete body.strength;
    else if (body.strength === undefined) body.strength = start.strength;
  }

  /* Client-side checks of what the browser can tell; the server checks everything again. */
  function checkRequest(body) {
    const bad = (param, message) => new ApiError(0, 'invalid_parameter', message, param);
    const maxN = $('n').getAttribute('max');
    if (body.n !== undefined && !(Number.isInteger(body.n) && body.n >= 1 && (maxN === null || body.n <= Number(maxN))))
      return bad('n', 'n must be an integer ≥ 1' + (maxN === null ? '' : ' and ≤ ' + maxN + ', this server\'s limit'));
    if (body.seed !== undefined && !(Number.isSafeInteger(body.seed) && body.seed >= 0)) return bad('seed', 'seed must be an integer ≥ 0');
    for (const el of samplerFields()) {
      if (body[el.name] === undefined) continue;
      const want = samplerRangeError(el, body[el.name]);
      if (want) return bad(el.name, el.name + ' must be ' + want);
    }
    return null;
  }

  function updateEstimate() {
    const steps = intField('steps') || (currentModel() ? currentModel().default_steps : 18);
    const n = intField('n') || 1;
    const euler = $('solver').value === 'euler';
    const nfe = euler ? steps : 2 * steps - 1;
    $('nfe-estimate').textContent = Number.isInteger(steps) && steps >= 2
      ? 'Expected: ' + nfe + ' network evaluations per image (' + (euler ? 'Euler: N' : 'Heun: 2N−1') + '), ' +
        nfe * n + ' in all.'
      : '';
  }

  /* ---- progress ------------------------------------------------------------------------- */

  function setProgress(p) {
    /* p: {steps_done, steps, nfe_done, nfe_total} */
    $('steps-done').textContent = p.steps_done;
    $('steps-total').textContent = p.steps;
    $('nfe-done').textContent = p.nfe_done;
    $('nfe-total').textContent = p.nfe_total;
    const pct = p.nfe_total > 0 ? Math.round((100 * p.nfe_done) / p.nfe_total) : 0;
    $('progress').value = pct;
    $('progress-pct').textContent = pct + '%';
    $('progress-text').textContent = 'step ' + p.steps_done + ' of ' + p.steps;
  }

  function setJobState(s) {
    const el = $('job-state');
    el.textContent = s;
    el.className = 'state-' + s;
    $('progress-box').dataset.state = s;
  }

  /* ---- following a job ------------------------------------------------------------------ */

  function stopFollowing() {
    if (state.stream) state.stream.close();
    state.stream = null;
    clearTimeout(state.pollTimer);
    state.pollTimer = 0;
  }

  function onEvent(jobId, name, data) {
    if (!state.job || state.job.id !== jobId) return;
    if (name === 'queued') {
      setJobState('queued');
    } else if (name === 'running') {
      setJobState('running');
      setProgress({ steps_done: 0, steps: data.steps, nfe_done: 0, nfe_total: data.nfe_total });
    } else if (name === 'progress') {
      setJobState('running');
      setProgress({ steps_done: data.step, steps: data.steps, nfe_done: data.nfe, nfe_total: data.nfe_total });
    } else if (name === 'rerun') {
      /* the replica running it died; another starts over, and progress resumes past data.step */
      $('progress-text').textContent = 'restarted on another server (run ' + data.attempt +
        '); progress resumes after step ' + data.step;
    } else if (name === 'completed' || name === 'failed' || name === 'cancelled') {
      stopFollowing();
      finish(data);
    }
  }

  /* EventSource (no API key) */
  function followWithEventSource(jobId) {
    const es = new EventSource('v1/jobs/' + encodeURIComponent(jobId) + '/events');
    let ended = false;
    for (const name of ['queued', 'running', 'rerun', 'progress', 'completed', 'failed', 'cancelled']) {
      es.addEventListener(name, (ev) => {
        let data = {};
        try { data = JSON.parse(ev.data); } catch (e) { /* keep {} */ }
        if (name === 'completed' || name === 'failed' || name === 'cancelled') {
          ended = true;
          es.close();
        }
        onEvent(jobId, name, data);
      });
    }
    es.onerror = () => {
      /* the stream broke before its last event (an ended stream would make EventSource
       * reconnect, but the page closes it on the last event): poll instead */
      es.close();
      if (!ended && state.job && state.job.id === jobId) poll(jobId);
    };
    return { close: () => es.close() };
  }

  /* fetch() with the Authorization header and a minimal text/event-stream parser */
  function followWithFetch(jobId) {
    const ctrl = new AbortController();
    let ended = false;
    (async () => {
      const resp = await fetch('v1/jobs/' + encodeURIComponent(jobId) + '/events', {
        headers: Object.assign({ Accept: 'text/event-stream' }, authHeaders()),
        signal: ctrl.signal,
      });
      if (!resp.ok || !resp.body) throw new Error('HTTP ' + resp.status);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let name = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          let obj = {};
          try { obj = JSON.parse(data.join('\n')); } catch (e) { /* keep {} */ }
          if (name === 'completed' || name === 'failed' || name === 'cancelled') ended = true;
          onEvent(jobId, name, obj);
        }
      }
    })().catch(() => {}).finally(() => {
      if (!ended && !ctrl.signal.aborted && state.job && state.job.id === jobId) poll(jobId);
    });
    return { close: () => ctrl.abort() };
  }

  /* fallback: GET /v1/jobs/{id} twice a second until the job ends */
  async function poll(jobId) {
    if (!state.job || state.job.id !== jobId) return;
    let job;
    try {
      job = await api('v1/jobs/' + encodeURIComponent(jobId));
    } catch (e) {
      showError(e);
      endJobUi();
      return;
    }
    if (!state.job || state.job.id !== jobId) return;
    setJobState(job.status);
    if (job.progress) setProgress(job.progress);
    if (job.status === 'completed' || job.status === 'failed' || job.status === 'cancelled') {
      finish(job);
      return;
    }
    state.pollTimer = setTimeout(() => poll(jobId), 500);
  }

  function endJobUi() {
    $('cancel').disabled = true;
    $('generate').disabled = !state.models.length;
    $('gen-form').setAttribute('aria-busy', 'false');
  }

  async function finish(job) {
    endJobUi();
    setJobState(job.status);
    if (job.progress) setProgress(job.progress);
    if (job.status !== 'completed') {
      if (job.error) {
        showError(new ApiError(0, job.error.code, job.error.message, job.error.param));
      } else {
        showError(new ApiError(0, job.status, 'the job ' + job.status, null));
      }
      return;
    }
    await showResult(job);
  }

  function ms(v) {
    return (Math.round(v * 10) / 10).toFixed(1) + ' ms';
  }

  async function showResult(job) {
    const r = job.result;
    $('r-job').textContent = job.id;
    $('r-model').textContent = r.model;
    $('r-steps').textContent = r.steps;
    $('r-nfe').textContent = r.nfe;
    $('r-queue').textContent = ms(r.timings.queue_ms);
    $('r-sampling').textContent = ms(r.timings.sampling_ms);
    $('r-encode').textContent = ms(r.timings.encode_ms);
    $('r-total').textContent = ms(r.timings.total_ms);
    $('r-batch').textContent = (Math.round(r.batch.mean_size * 100) / 100) + ' / ' + r.batch.max_size;
    const section = $('result');
    section.dataset.jobId = job.id;
    section.dataset.nfe = r.nfe;
    section.dataset.steps = r.steps;
    section.dataset.model = r.model;
    section.dataset.timings = JSON.stringify(r.timings);
    section.dataset.loaded = 'false';
    const grid = $('images');
    grid.textContent = '';
    const model = state.models.find((m) => m.id === r.model);
    const side = model ? model.resolution : 0;
    const cards = r.data.map((img) => {
      const fig = document.createElement('figure');
      fig.className = 'image';
      fig.dataset.testid = 'image-card';
      fig.dataset.index = img.index;
      fig.dataset.seed = img.seed;
      fig.dataset.nfe = img.nfe;
      fig.dataset.classLabel = img.class_label === null ? '' : img.class_label;
      const pic = document.createElement('img');
      pic.alt = 'image ' + img.index + ', seed ' + img.seed +
        (img.class_label === null ? '' : ', class ' + img.class_label);
      pic.dataset.testid = 'image';
      if (side) { pic.width = side; pic.height = side; }
      const cap = document.createElement('figcaption');
      const line = (label, value, testid) => {
        const s = document.createElement('span');
        s.className = 'fig';
        const b = document.createElement('b');
        b.dataset.testid = testid;
        b.textContent = value;
        s.append(label + ' ', b);
        return s;
      };
      cap.append(line('seed', img.seed, 'image-seed'),
        line('class', img.class_label === null ? '–' : img.class_label, 'image-class'),
        line('NFE', img.nfe, 'image-nfe'));
      const dl = document.createElement('a');
      dl.className = 'download';
      dl.dataset.testid = 'image-download';
      dl.textContent = 'Download PNG';
      dl.setAttribute('aria-disabled', 'true');
      dl.download = 'edm_' + r.model + '_seed' + img.seed +
        (img.class_label === null ? '' : '_class' + img.class_label) + '_' + r.steps + 'steps.png';
      cap.append(dl);
      const use = document.createElement('button');
      use.type = 'button';
      use.className = 'use';
      use.dataset.testid = 'image-use';
      use.textContent = 'Use as input';
      use.title = 'Draw this image into "Start from an image"';
      use.disabled = true;
      if (window.edmStartImage) cap.append(use);
      fig.append(pic, cap);
      grid.append(fig);
      return { img, pic, dl, use };
    });
    section.hidden = false;
    section.scrollIntoView({ block: 'start' });
    /* fetch each PNG (with the key when there is one) into a blob: URL */
    const loads = cards.map(async ({ img, pic, dl, use }) => {
      const path = 'v1/jobs/' + encodeURIComponent(job.id) + '/images/' + img.index;
      let blob = null;
      if (img.b64_json) {
        const bytes = Uint8Array.from(atob(img.b64_json), (c) => c.charCodeAt(0));
        blob = new Blob([bytes], { type: 'image/png' });
      } else {
        const resp = await fetch(path, { headers: authHeaders() });
        if (!resp.ok) {
          let err = null;
          try { err = (await resp.json()).error; } catch (e) { /* not JSON */ }
          throw new ApiError(resp.status, err ? err.code : 'http_' + resp.status,
            err ? err.message : 'image ' + img.index + ' could not be loaded', err ? err.param : null);
        }
        blob = await resp.blob();
      }
      const url = URL.createObjectURL(blob);
      state.blobUrls.push(url);
      await new Promise((resolve, reject) => {
        pic.onload = resolve;
        pic.onerror = () => reject(new ApiError(0, 'bad_image', 'image ' + img.index + ' did not decode', null));
        pic.src = url;
      });
      dl.href = url;
      dl.removeAttribute('aria-disabled');
      use.onclick = () => window.edmStartImage.useImage(url).catch(showError);
      use.disabled = false;
    });
    const results = await Promise.allSettled(loads);
    const failed = results.find((x) => x.status === 'rejected');
    if (failed) showError(failed.reason);
    section.dataset.loaded = failed ? 'error' : 'true';
  }

  /* ---- submit and cancel ---------------------------------------------------------------- */

  /* Hides the result and the progress of the request before (a new request replaces them,
   * and one that fails must not leave them under its error). */
  function clearResult() {
    $('result').hidden = true;
    $('images').textContent = '';
    delete $('result').dataset.jobId;
    $('progress-box').hidden = true;
    for (const u of state.blobUrls) URL.revokeObjectURL(u);
    state.blobUrls = [];
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    clearInvalid();
    showError(null);
    stopFollowing();
    state.job = null;
    clearResult();
    const body = buildRequest();
    const bad = checkRequest(body);
    if (bad) {
      showError(bad);
      return;
    }
    $('generate').disabled = true;
    $('gen-form').setAttribute('aria-busy', 'true');
    let job;
    try {
      job = await api('v1/jobs', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch (e) {
      endJobUi();
      showError(e);
      if (e.status === 401) {
        state.needsKey = true;
        $('key-box').hidden = false;
      }
      return;
    }
    state.job = job;
    $('progress-box').hidden = false;
    $('progress-box').dataset.jobId = job.id;
    setJobState(job.status);
    setProgress(job.progress);
    $('cancel').disabled = false;
    $('progress-box').scrollIntoView({ block: 'nearest' });
    state.stream = state.needsKey ? followWithFetch(job.id) : followWithEventSource(job.id);
  }

  async function onCancel() {
    const job = state.job;
    if (!job) return;
    $('cancel').disabled = true;
    try {
      await api('v1/jobs/' + encodeURIComponent(job.id), { method: 'DELETE' });
      /* the event stream delivers "cancelled" */
    } catch (e) {
      if (e.code !== 'job_finished') showError(e);
    }
  }

  /* ---- start ---------------------------------------------------------------------------- */

  function init() {
    $('gen-form').addEventListener('submit', onSubmit);
    $('cancel').addEventListener('click', onCancel);
    $('model').addEventListener('change', () => {
      $('steps').dataset.touched = '';
      onModelChange();
    });
    $('steps').addEventListener('input', () => { $('steps').dataset.touched = '1'; updateEstimate(); });
    for (const id of ['n', 'solver']) $(id).addEventListener('input', updateEstimate);
    $('gen-form').addEventListener('input', (ev) => {
      const el = ev.target;
      if (!el.hasAttribute || !el.hasAttribute('aria-invalid')) return;
      el.removeAttribute('aria-invalid');
      el.removeAttribute('aria-describedby');
      const note = $('field-error-' + el.id);
      if (note) note.remove();
    });
    $('seed-dice').addEventListener('click', () => {
      const a = new Uint32Array(1);
      crypto.getRandomValues(a);
      $('seed').value = String(a[0] % 1000000000);
    });
    $('api-key').value = state.apiKey;
    const saveKey = () => {
      state.apiKey = $('api-key').value.trim();
      if (state.apiKey) localStorage.setItem(KEY_STORE, state.apiKey);
      else localStorage.removeItem(KEY_STORE);
      loadModels();
    };
    $('api-key-save').addEventListener('click', saveKey);
    $('api-key').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        saveKey();
      }
    });
    $('generate').disabled = true;
    loadModels();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
