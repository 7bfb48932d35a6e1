/*
 * canvas.js - "Start from an image" on edmd's web page: a canvas to draw on (or load an image
 * into), a mask painted over it with its own brush, and the strength. app.js asks for the
 * request fields (init_image, mask: PNG data URLs at the model's resolution; strength) when a
 * job is submitted, and hands back result images for "Use as input".
 *
 * Layers. Two offscreen canvases of side W = k R, where R is the model's resolution and k the
 * smallest integer that makes W at least the canvas's 280 CSS pixels: strokes are drawn at
 * that size, so they look smooth, and the export to R x R is an exact k x k box average (an
 * area downscale that does not depend on how a browser smooths drawImage). The converse also
 * holds: an R x R image drawn back in with nearest neighbour (k x k blocks) exports as itself,
 * so "Use as input" on a result gives the model back exactly that result.
 *  - image: opaque; black with white ink, MNIST's colours (a digit is white on black);
 *  - mask: transparent where the image is kept, white where it is repainted; its alpha is the
 *    mask's grey level (the API's white = repaint, black = keep, grey blends).
 * The visible canvas shows the image with the mask as a translucent red tint; two small
 * canvases beside it show the exported R x R image and mask, i.e. what the model gets.
 *
 * Exposes window.edmStartImage (bottom of the file) to app.js; nothing here calls the API.
 */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const DISPLAY_PX = 280;     /* the canvas's CSS size; the layers are at least this big */
  const INK = '#ffffff';
  const PAPER = '#000000';
  const TINT = 'rgb(255, 48, 48)';

  const S = {
    R: 0, C: 1, k: 1, W: 0,
    image: null,         /* offscreen layers, W x W */
    mask: null,
    tint: null,          /* scratch for drawing the mask as a red overlay */
    stroke: null,        /* the pointer drawing now: {id, x, y} */
    maskEmpty: true,
    strengthTouched: false,
  };

  function layer(W) {
    const c = document.createElement('canvas');
    c.width = c.height = W;
    return c;
  }

  /* the layers are read back (export), so ask for a CPU-side canvas */
  function ctx2d(c) {
    return c.getContext('2d', { willReadFrequently: true });
  }

  function fillLayer(c, colour) {
    const g = ctx2d(c);
    g.globalCompositeOperation = 'source-over';
    g.fillStyle = colour;
    g.fillRect(0, 0, c.width, c.height);
  }

  /* ---- the model: resolution and channels ---------------------------------------------- */

  /* Sizes the layers for model m (GET /v1/models: resolution, channels). Drawn content is
   * kept, rescaled, when the model changes. */
  function setModel(m) {
    if (!m || !m.resolution) return;
    const R = m.resolution, k = Math.max(1, Math.ceil(DISPLAY_PX / R)), W = k * R;
    S.C = m.channels === 3 ? 3 : 1;
    if (W !== S.W) {
      const image = layer(W), mask = layer(W);
      fillLayer(image, PAPER);
      if (S.image) {
        for (const [to, from] of [[image, S.image], [mask, S.mask]]) {
          const g = ctx2d(to);
          g.imageSmoothingQuality = 'high';
          g.drawImage(from, 0, 0, W, W);
        }
      }
      Object.assign(S, { R, k, W, image, mask, tint: layer(W) });
      $('draw-canvas').width = $('draw-canvas').height = W;
      for (const id of ['draw-preview-image', 'draw-preview-mask']) $(id).width = $(id).height = R;
    }
    $('draw-size').textContent = R + '×' + R + (S.C === 1 ? ' grey' : ' RGB');
    /* brush sizes are in model pixels: MNIST's strokes are 2-3 pixels wide at 28x28 */
    const brush = $('draw-brush');
    brush.max = String(Math.max(8, Math.round(R / 4)));
    if (!brush.dataset.touched) brush.value = String(Math.max(1, Math.round(R * 0.08 * 2) / 2));
    showBrush();
    changed();
  }

  /* ---- drawing with pointer events (mouse, touch, pen) ---------------------------------- */

  function tool() {
    return document.querySelector('input[name="draw-tool"]:checked').value; /* image | mask */
  }

  /* a pointer event's position in layer pixels */
  function at(ev) {
    const r = $('draw-canvas').getBoundingClientRect();
    return { x: ((ev.clientX - r.left) * S.W) / r.width, y: ((ev.clientY - r.top) * S.W) / r.height };
  }

  /* One segment of a stroke (a dot when a = b) on the layer the brush paints. The eraser
   * paints the paper colour on the image and removes paint from the mask. */
  function paint(a, b) {
    const maskTool = tool() === 'mask', erase = $('draw-eraser').checked;
    const g = ctx2d(maskTool ? S.mask : S.image);
    g.globalCompositeOperation = maskTool && erase ? 'destination-out' : 'source-over';
    g.strokeStyle = !maskTool && erase ? PAPER : INK;
    g.lineWidth = Number($('draw-brush').value) * S.k;
    g.lineCap = g.lineJoin = 'round';
    g.beginPath();
    g.moveTo(a.x, a.y);
    g.lineTo(b.x + (a.x === b.x && a.y === b.y ? 0.01 : 0), b.y); /* a zero-length line draws no cap */
    g.stroke();
    g.globalCompositeOperation = 'source-over';
  }

  function onPointerDown(ev) {
    if (ev.pointerType === 'mouse' && ev.button !== 0) return;
    ev.preventDefault();
    $('draw-canvas').setPointerCapture(ev.pointerId);
    const p = at(ev);
    S.stroke = { id: ev.pointerId, x: p.x, y: p.y };
    paint(p, p);
    render();
  }

  function onPointerMove(ev) {
    if (!S.stroke || ev.pointerId !== S.stroke.id) return;
    /* the coalesced events are the points between two frames: without them a fast stroke
     * becomes a few straight pieces */
    const evs = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
    for (const e of evs.length ? evs : [ev]) {
      const p = at(e);
      paint(S.stroke, p);
      S.stroke.x = p.x;
      S.stroke.y = p.y;
    }
    render();
  }

  function onPointerUp(ev) {
    if (!S.stroke || ev.pointerId !== S.stroke.id) return;
    S.stroke = null;
    changed(true);
  }

  /* ---- showing the layers ----------------------------------------------------------------- */

  function render() {
    const g = $('draw-canvas').getContext('2d');
    g.globalAlpha = 1;
    g.drawImage(S.image, 0, 0);
    /* the mask in red: its alpha (the grey level) times a constant opacity */
    const t = ctx2d(S.tint);
    t.globalCompositeOperation = 'copy';
    t.drawImage(S.mask, 0, 0);
    t.globalCompositeOperation = 'source-in';
    t.fillStyle = TINT;
    t.fillRect(0, 0, S.W, S.W);
    g.globalAlpha = 0.5;
    g.drawImage(S.tint, 0, 0);
    g.globalAlpha = 1;
  }

  /* After every edit: redraw, export to the previews (what the model gets), say what the
   * request will carry. An edit made by the person (not a model change) turns the canvas on. */
  function changed(edited) {
    if (edited && !$('init-use').checked) {
      $('init-use').checked = true;
      onUseChange();
    }
    render();
    exportTo($('draw-preview-image'), S.image, 'image');
    S.maskEmpty = !exportTo($('draw-preview-mask'), S.mask, 'mask');
    /* the strength follows the API's defaults (1 with a mask, 0.5 without) until it is set */
    if (!S.strengthTouched) setStrength(S.maskEmpty ? 0.5 : 1);
    showState();
  }

  /* ---- export: the layers at the model's resolution --------------------------------------- */

  /* Box-averages `from` (W x W) into `to` (R x R) and returns whether any pixel is nonzero.
   * kind 'image': RGB (a grey model: luminance, 0.299 R + 0.587 G + 0.114 B as the server
   * takes it, so the preview is what the model sees); 'mask': the alpha as grey. Opaque. */
  function exportTo(to, from, kind) {
    const { R, k, W } = S;
    const src = ctx2d(from).getImageData(0, 0, W, W).data;
    const out = new ImageData(R, R);
    const n = k * k;
    let any = false;
    for (let y = 0; y < R; y++) {
      for (let x = 0; x < R; x++) {
        let r = 0, g = 0, b = 0, a = 0;
        for (let dy = 0; dy < k; dy++) {
          let i = ((y * k + dy) * W + x * k) * 4;
          for (let dx = 0; dx < k; dx++, i += 4) {
            r += src[i]; g += src[i + 1]; b += src[i + 2]; a += src[i + 3];
          }
        }
        let px;
        if (kind === 'mask') px = [a / n, a / n, a / n];
        else if (S.C === 1) px = Array(3).fill((0.299 * r + 0.587 * g + 0.114 * b) / n);
        else px = [r / n, g / n, b / n];
        const o = (y * R + x) * 4;
        for (let c = 0; c < 3; c++) out.data[o + c] = Math.round(px[c]);
        out.data[o + 3] = 255;
        any = any || out.data[o] > 0 || out.data[o + 1] > 0 || out.data[o + 2] > 0;
      }
    }
    to.getContext('2d').putImageData(out, 0, 0);
    return any;
  }

  /* ---- helpers: clear, invert, load, the mask's halves ----------------------------------- */

  function clearImage() {
    fillLayer(S.image, PAPER);
    changed(true);
  }

  /* a photo of a digit is dark ink on light paper; MNIST is the other way round */
  function invertImage() {
    const g = ctx2d(S.image);
    g.globalCompositeOperation = 'difference';
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, S.W, S.W);
    g.globalCompositeOperation = 'source-over';
    changed(true);
  }

  /* The lower half in whole model rows (floor(R/2) kept), so the export is exactly
   * black above and white below. */
  function maskLowerHalf() {
    const g = ctx2d(S.mask);
    g.clearRect(0, 0, S.W, S.W);
    g.fillStyle = INK;
    const top = Math.floor(S.R / 2) * S.k;
    g.fillRect(0, top, S.W, S.W - top);
    changed(true);
  }

  /* alpha -> 1 - alpha: white everywhere, less the old mask */
  function invertMask() {
    const t = ctx2d(S.tint);
    t.globalCompositeOperation = 'copy';
    t.fillStyle = INK;
    t.fillRect(0, 0, S.W, S.W);
    t.globalCompositeOperation = 'destination-out';
    t.drawImage(S.mask, 0, 0);
    const g = ctx2d(S.mask);
    g.globalCompositeOperation = 'copy';
    g.drawImage(S.tint, 0, 0);
    g.globalCompositeOperation = 'source-over';
    changed(true);
  }

  function clearMask() {
    ctx2d(S.mask).clearRect(0, 0, S.W, S.W);
    changed(true);
  }

  /* Draws src (w x h) centred into the image layer, as large as fits, on black. An integer
   * scale (a result of this model: k exactly) is drawn with nearest neighbour, so it exports
   * back to the same pixels; anything else is smoothed. */
  function drawFitted(src, w, h) {
    const g = ctx2d(S.image);
    fillLayer(S.image, PAPER);
    const scale = Math.min(S.W / w, S.W / h);
    g.imageSmoothingEnabled = !Number.isInteger(scale);
    g.imageSmoothingQuality = 'high';
    const dw = w * scale, dh = h * scale;
    g.drawImage(src, (S.W - dw) / 2, (S.W - dh) / 2, dw, dh);
    g.imageSmoothingEnabled = true;
    changed(true);
  }

  async function loadFile(file) {
    if (!file) return;
    try {
      const bmp = await createImageBitmap(file);
      drawFitted(bmp, bmp.width, bmp.height);
      $('draw-note').textContent = file.name + ' (' + bmp.width + '×' + bmp.height + ') loaded';
      bmp.close();
    } catch (e) {
      $('draw-note').textContent = file.name + ' is not an image this browser can read';
    }
  }

  /* Starts from an image given by URL (a result's blob: URL); resolves when it is drawn. */
  function useImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => {
        drawFitted(img, img.naturalWidth, img.naturalHeight);
        $('draw-note').textContent = 'result loaded as the starting image';
        $('start-image').open = true;
        $('start-image').scrollIntoView({ block: 'start' });
        resolve();
      };
      img.onerror = () => reject(new Error('the image did not decode'));
      img.src = url;
    });
  }

  /* ---- strength and the "use" switch ------------------------------------------------------ */

  /* The form's own strength field (a data-param control, one per sampler-table row), when
   * the page has one: the slider is a second view of it while the canvas is in use. */
  function strengthField() {
    return document.querySelector('#gen-form [data-param][name="strength"]');
  }

  function setStrength(v) {
    $('init-strength').value = String(v);
    showStrength();
  }

  function showStrength() {
    const v = Number($('init-strength').value);
    $('init-strength-out').textContent = v.toFixed(2);
    const f = strengthField();
    if (f && $('init-use').checked) f.value = String(v);
  }

  /* Turning the canvas off takes its strength out of the form's field, so a plain
   * generation sends no strength (it would need an init image). */
  function onUseChange() {
    const f = strengthField();
    if (f) {
      if ($('init-use').checked) f.value = $('init-strength').value;
      else if (Number(f.value) === Number($('init-strength').value)) f.value = '';
    }
    showState();
  }

  function showState() {
    const on = $('init-use').checked;
    $('init-state').textContent = on ? (S.maskEmpty ? '(on: image)' : '(on: image + mask)') : '(off)';
    $('start-image').dataset.use = on ? (S.maskEmpty ? 'image' : 'mask') : 'off';
  }

  function showBrush() {
    $('draw-brush-out').textContent = $('draw-brush').value + ' px';
  }

  /* ---- for app.js -------------------------------------------------------------------------- */

  /* The request's fields, or null when the canvas is not in use: init_image, mask (only when
   * something is painted on it) and strength, fresh from the layers. */
  function requestFields() {
    if (!S.W || !$('init-use').checked) return null;
    changed();
    const f = {
      init_image: $('draw-preview-image').toDataURL('image/png'),
      strength: Number($('init-strength').value),
    };
    if (!S.maskEmpty) f.mask = $('draw-preview-mask').toDataURL('image/png');
    return f;
  }

  function init() {
    const cv = $('draw-canvas');
    cv.addEventListener('pointerdown', onPointerDown);
    cv.addEventListener('pointermove', onPointerMove);
    cv.addEventListener('pointerup', onPointerUp);
    cv.addEventListener('pointercancel', onPointerUp);
    $('draw-brush').addEventListener('input', () => { $('draw-brush').dataset.touched = '1'; showBrush(); });
    $('draw-clear').addEventListener('click', clearImage);
    $('draw-invert').addEventListener('click', invertImage);
    $('draw-load').addEventListener('click', () => $('draw-file').click());
    $('draw-file').addEventListener('change', () => {
      loadFile($('draw-file').files[0]);
      $('draw-file').value = ''; /* the same file again is a change too */
    });
    $('mask-lower').addEventListener('click', maskLowerHalf);
    $('mask-invert').addEventListener('click', invertMask);
    $('mask-clear').addEventListener('click', clearMask);
    $('init-use').addEventListener('change', onUseChange);
    $('init-strength').addEventListener('input', () => { S.strengthTouched = true; showStrength(); });
    /* the form's strength field, typed into, moves the slider */
    document.getElementById('gen-form').addEventListener('input', (ev) => {
      const f = strengthField();
      if (ev.target !== f || f.value.trim() === '' || !(Number(f.value) > 0 && Number(f.value) <= 1)) return;
      S.strengthTouched = true;
      $('init-strength').value = f.value;
      $('init-strength-out').textContent = Number(f.value).toFixed(2);
    });
    showBrush();
    showState();
  }

  window.edmStartImage = { setModel, requestFields, useImage };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
