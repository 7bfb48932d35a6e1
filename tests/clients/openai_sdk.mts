// openai_sdk.mts - edmd through the official openai SDK, as its users write it.
//
// test_clients.sh type-checks this file with tsc (strict, no casts in the SDK calls: what a
// TypeScript user writes compiles as it is), then runs the JavaScript tsc makes from it
// against a live edmd serving the bundled MNIST model. What edmd adds to OpenAI's answers
// (class_label, the PNG's Request text) is read through edmExtra(), the one deliberate cast.
//
// Environment: EDMD_URL (the daemon; unset: only the API key part), KEYED_URL and API_KEY (a
// daemon with an API key; unset: that part is left out), MODEL (a class-conditional model
// with class names, "mnist-edm"), DIGIT_B64, MASK_B64 and MASK_ALPHA_B64 (32x32 PNGs as
// base64: a digit, a mask whose lower half is white, the same as OpenAI draws it with the
// lower half transparent; unset: images.edit and createVariation are skipped).
// Prints PASS/FAIL lines and "N passed, N failed, N skipped".
import OpenAI, { toFile } from 'openai';

declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

const env = process.env;
const MODEL = env.MODEL || 'mnist-edm';
const T = { pass: 0, fail: 0, skip: 0 };
function check(desc: string, cond: boolean, detail?: unknown): void {
  if (cond) {
    T.pass++;
    console.log('PASS: ' + desc);
  } else {
    T.fail++;
    console.log('FAIL: ' + desc + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
  }
}

/* What edmd says beyond OpenAI's types. */
function edmExtra(o: unknown): Record<string, unknown> {
  return o as Record<string, unknown>;
}

/* Width, height and tEXt chunks of a PNG. */
function pngFacts(b64: string): { width: number; height: number; text: Record<string, string> } | null {
  const bin = atob(b64);
  const buf = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (buf.length < 33 || !sig.every((v, i) => buf[i] === v)) return null;
  const dv = new DataView(buf.buffer);
  const text: Record<string, string> = {};
  for (let pos = 8; pos + 8 <= buf.length; ) {
    const len = dv.getUint32(pos);
    const kind = String.fromCharCode(...buf.subarray(pos + 4, pos + 8));
    if (kind === 'tEXt') {
      const body = buf.subarray(pos + 8, pos + 8 + len);
      const zero = body.indexOf(0);
      text[String.fromCharCode(...body.subarray(0, zero))] = new TextDecoder('latin1').decode(body.subarray(zero + 1));
    }
    pos += 12 + len;
  }
  return { width: dv.getUint32(16), height: dv.getUint32(20), text };
}

function b64bytes(s: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/* The pixels of an 8-bit gray or RGB PNG, non-interlaced (what edmd writes), row-major. */
async function pngPixels(buf: Uint8Array): Promise<{ width: number; height: number; channels: number; px: Uint8Array } | null> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 33) return null;
  const width = dv.getUint32(16), height = dv.getUint32(20), color = buf[25];
  if (buf[24] !== 8 || (color !== 0 && color !== 2) || buf[28] !== 0) return null;
  const channels = color === 0 ? 1 : 3, stride = width * channels;
  const parts: Uint8Array[] = [];
  for (let pos = 8; pos + 8 <= buf.length; ) {
    const len = dv.getUint32(pos);
    if (String.fromCharCode(...buf.subarray(pos + 4, pos + 8)) === 'IDAT') parts.push(buf.subarray(pos + 8, pos + 8 + len));
    pos += 12 + len;
  }
  const idat = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (idat.set(p, at), at + p.length), 0);
  const inflated = new Blob([idat]).stream().pipeThrough(new DecompressionStream('deflate'));
  const raw = new Uint8Array(await new Response(inflated).arrayBuffer());
  if (raw.length !== height * (stride + 1)) return null;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? px[y * stride + i - channels] : 0, b = y ? px[(y - 1) * stride + i] : 0;
      const c = i >= channels && y ? px[(y - 1) * stride + i - channels] : 0, p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][f];
      if (pred === undefined) return null;
      px[y * stride + i] = (raw[y * (stride + 1) + 1 + i] + pred) & 255;
    }
  }
  return { width, height, channels, px };
}

/* How many of rows [y0, y1) differ between two decoded PNGs of the same size (-1: not comparable). */
function rowsDiffer(a: Awaited<ReturnType<typeof pngPixels>>, b: Awaited<ReturnType<typeof pngPixels>>, y0: number, y1: number): number {
  if (!a || !b || a.width !== b.width || a.channels !== b.channels) return -1;
  const s = a.width * a.channels;
  let n = 0;
  for (let k = y0 * s; k < y1 * s; k++) if (a.px[k] !== b.px[k]) n++;
  return n;
}

async function expectError(desc: string, call: () => Promise<unknown>, status: number, want: (e: InstanceType<typeof OpenAI.APIError>) => boolean): Promise<void> {
  try {
    await call();
    check(desc + ': refused', false, 'it succeeded');
  } catch (e) {
    if (e instanceof OpenAI.APIError) {
      check(desc + ': HTTP ' + status, e.status === status, { status: e.status, message: e.message });
      check(desc + ': the error as OpenAI writes it', want(e), { code: e.code, param: e.param, type: e.type, message: e.message });
    } else {
      check(desc + ': an OpenAI.APIError', false, String(e));
    }
  }
}

async function main(): Promise<void> {
  if (env.EDMD_URL) await withoutKey();
  if (env.KEYED_URL && env.API_KEY) await withKey(env.KEYED_URL, env.API_KEY);
}

async function withoutKey(): Promise<void> {
  const client = new OpenAI({ baseURL: env.EDMD_URL + '/v1', apiKey: 'unused', maxRetries: 0 });
  const steps = Number(edmExtra(await client.models.retrieve(MODEL)).default_steps);

  // 1. The call: two images of a random class, as base64
  const two = await client.images.generate({ model: MODEL, prompt: '', n: 2, response_format: 'b64_json' });
  check('images.generate({prompt: "", n: 2, b64_json}): two images', two.data?.length === 2, two.data?.length);
  const facts = (two.data ?? []).map((d) => (d.b64_json ? pngFacts(d.b64_json) : null));
  check('both are 32x32 PNGs', facts.every((f) => f !== null && f.width === 32 && f.height === 32), facts.map((f) => f && [f.width, f.height]));
  check('created is a Unix time', typeof two.created === 'number' && two.created > 1.6e9, two.created);
  const labels = (two.data ?? []).map((d) => edmExtra(d).class_label);
  check('an empty prompt: a class drawn from each seed', labels.every((l) => typeof l === 'number' && l >= 0 && l < 10), labels);

  // 2. prompt names the class, with OpenAI's other fields (quality, style, user: no effect)
  const seven = await client.images.generate({
    model: MODEL, prompt: 'seven', n: 1, size: 'auto', response_format: 'b64_json', output_format: 'png',
    quality: 'standard', style: 'natural', user: 'client-test',
  });
  const img = seven.data?.[0];
  check('prompt "seven": class 7', img !== undefined && edmExtra(img).class_label === 7, img && edmExtra(img).class_label);
  const text = img?.b64_json ? pngFacts(img.b64_json)?.text : undefined;
  let request: Record<string, unknown> = {};
  try { request = JSON.parse(text?.Request ?? '{}'); } catch { /* stays empty */ }
  check('the PNG says how to make it again (Request text)', request.model === MODEL && request.class_label === 7 &&
    typeof request.model_sha256 === 'string' && request.steps === steps && request.nfe === 2 * steps - 1, request);
  const zero = await client.images.generate({ model: MODEL, prompt: 'ZERO' });
  check('prompt "ZERO": class 0 (any case), b64_json by default', zero.data?.[0] !== undefined &&
    edmExtra(zero.data[0]).class_label === 0 && typeof zero.data[0].b64_json === 'string');

  // 3. response_format url: absolute URLs that serve the PNGs
  const urls = await client.images.generate({ model: MODEL, prompt: '3', n: 2, response_format: 'url' });
  const u = urls.data?.map((d) => d.url ?? '') ?? [];
  check('response_format url: absolute URLs, no bytes', u.length === 2 && u.every((x) => x.startsWith(env.EDMD_URL + '/v1/jobs/')) &&
    urls.data?.every((d) => d.b64_json === undefined) === true, u);
  for (const url of u) {
    const r = await fetch(url);
    const bytes = new Uint8Array(await r.arrayBuffer());
    check('GET ' + url.slice(-40) + ': the PNG', r.status === 200 && r.headers.get('content-type') === 'image/png' && bytes[1] === 80, r.status);
  }

  // 4. refusals, as the SDK's error classes with OpenAI's fields
  await expectError('prompt "cat"', () => client.images.generate({ model: MODEL, prompt: 'cat' }), 400,
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'prompt' && e.type === 'invalid_request_error' &&
      e.code === 'invalid_parameter' && e.message.includes('7/seven'));
  await expectError('size 1024x1024', () => client.images.generate({ model: MODEL, prompt: '', size: '1024x1024' }), 400,
    (e) => e.param === 'size' && e.message.includes('"32x32"'));
  await expectError('output_format jpeg', () => client.images.generate({ model: MODEL, prompt: '', output_format: 'jpeg' }), 400,
    (e) => e.param === 'output_format');
  await expectError('n beyond the limit', () => client.images.generate({ model: MODEL, prompt: '', n: 64 }), 400,
    (e) => e.param === 'n');
  await expectError('prompt contradicting class_label', () => client.images.generate(
    { model: MODEL, prompt: 'seven', ...{ class_label: 3 } }), 400, (e) => e.param === 'prompt');
  await expectError('an unknown model', () => client.images.generate({ model: 'dall-e-3', prompt: 'a cat' }), 404,
    (e) => e instanceof OpenAI.NotFoundError && e.param === 'model' && e.type === 'invalid_request_error');

  // 5. models
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  check('models.list(): the model', ids.includes(MODEL), ids);
  const m = await client.models.retrieve(MODEL);
  check('models.retrieve(id): OpenAI fields', m.id === MODEL && m.object === 'model' && typeof m.created === 'number' &&
    typeof m.owned_by === 'string', m);
  const mx = edmExtra(m);
  const limits = mx.limits as Record<string, number> | undefined;
  const sampler = mx.sampler as Record<string, Record<string, unknown>> | undefined;
  const names = mx.class_names as string[][] | undefined;
  check('models.retrieve(id): resolution, class names, limits, sampler ranges', mx.resolution === 32 && mx.size === '32x32' &&
    names?.[7]?.includes('seven') === true && typeof limits?.max_n === 'number' && typeof limits?.max_steps === 'number' &&
    sampler?.steps?.maximum === limits?.max_steps && sampler?.S_churn?.minimum === 0, { limits, steps: sampler?.steps });
  await expectError('models.retrieve("nope")', () => client.models.retrieve('nope'), 404,
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');

  if (env.DIGIT_B64 && env.MASK_B64 && env.MASK_ALPHA_B64) await editsAndVariations(client, steps);
  else check('images.edit / createVariation: skipped (no DIGIT_B64, MASK_B64, MASK_ALPHA_B64)', true);
}

// 7. images.edit (inpainting: the known half unchanged) and images.createVariation, multipart
async function editsAndVariations(client: OpenAI, steps: number): Promise<void> {
  const digitBytes = b64bytes(env.DIGIT_B64 ?? ''), maskBytes = b64bytes(env.MASK_B64 ?? '');
  const digit = await pngPixels(digitBytes);
  const image = () => toFile(digitBytes, 'digit.png', { type: 'image/png' });
  const edit = await client.images.edit({
    model: MODEL, image: await image(), mask: await toFile(maskBytes, 'mask.png', { type: 'image/png' }),
    prompt: 'seven', n: 2, size: 'auto', response_format: 'b64_json', ...{ seed: 5 },
  });
  check('images.edit({image, mask, prompt, n: 2}): two images', edit.data?.length === 2, edit.data?.length);
  const out = await Promise.all((edit.data ?? []).map((d) => pngPixels(b64bytes(d.b64_json ?? ''))));
  check('images.edit: 32x32 gray PNGs', out.every((o) => o !== null && o.width === 32 && o.height === 32 && o.channels === 1),
    out.map((o) => o && [o.width, o.height, o.channels]));
  check('images.edit: the prompt\'s class', (edit.data ?? []).every((d) => edmExtra(d).class_label === 7));
  check('images.edit: the kept upper half is the input\'s, pixel for pixel', out.every((o) => rowsDiffer(o, digit, 0, 16) === 0),
    out.map((o) => rowsDiffer(o, digit, 0, 16)));
  check('images.edit: the lower half is repainted', out.every((o) => rowsDiffer(o, digit, 16, 32) > 0));
  check('images.edit: nfe 2N-1 per image', (edit.data ?? []).every((d) => edmExtra(d).nfe === 2 * steps - 1) &&
    edmExtra(edit).nfe === 2 * steps - 1, edmExtra(edit).nfe);
  const alpha = await client.images.edit({
    model: MODEL, image: await image(), mask: await toFile(b64bytes(env.MASK_ALPHA_B64 ?? ''), 'mask.png', { type: 'image/png' }),
    prompt: 'seven', ...{ seed: 5 },
  });
  const apx = await pngPixels(b64bytes(alpha.data?.[0]?.b64_json ?? ''));
  check('images.edit with OpenAI\'s mask (transparent = repaint): the same pixels', rowsDiffer(apx, out[0], 0, 32) === 0,
    rowsDiffer(apx, out[0], 0, 32));
  const urls = await client.images.edit({ model: MODEL, image: await image(), prompt: 'a photo of a digit', response_format: 'url' });
  const url = urls.data?.[0]?.url ?? '';
  const r = url ? await fetch(url) : null;
  check('images.edit without a mask, response_format url: the PNG', r !== null && r.status === 200 &&
    r.headers.get('content-type') === 'image/png', url);

  const vars = await client.images.createVariation({ model: MODEL, image: await image(), n: 3 });
  const seeds = (vars.data ?? []).map((d) => edmExtra(d).seed as number);
  check('images.createVariation({image, n: 3}): three images of fresh, consecutive seeds', seeds.length === 3 &&
    seeds[1] === seeds[0] + 1 && seeds[2] === seeds[0] + 2, seeds);
  const vpx = await Promise.all((vars.data ?? []).map((d) => pngPixels(b64bytes(d.b64_json ?? ''))));
  check('images.createVariation: 32x32 PNGs, each its own', vpx.every((o) => o !== null && o.width === 32) &&
    rowsDiffer(vpx[0], vpx[1], 0, 32) > 0);
  const text = pngFacts(vars.data?.[0]?.b64_json ?? '')?.text;
  check('images.createVariation: img2img at strength 0.5, the input named', (text?.Sampler ?? '').includes(' strength=0.5 ') &&
    (text?.init_image_sha256 ?? '').length === 64, text?.Sampler);
  await expectError('images.edit of a file that is no PNG', async () => client.images.edit({
    model: MODEL, image: await toFile(new TextEncoder().encode('not a png'), 'x.png', { type: 'image/png' }), prompt: '',
  }), 400, (e) => e instanceof OpenAI.BadRequestError && e.param === 'image' && e.type === 'invalid_request_error');
  await expectError('images.createVariation with n beyond the limit', async () => client.images.createVariation({
    model: MODEL, image: await image(), n: 64,
  }), 400, (e) => e.param === 'n');
}

// 6. API keys: the SDK's apiKey is the Bearer key
async function withKey(url: string, key: string): Promise<void> {
  const keyed = new OpenAI({ baseURL: url + '/v1', apiKey: key, maxRetries: 0 });
  const k = await keyed.images.generate({ model: MODEL, prompt: 'one', response_format: 'b64_json' });
  check('with the API key: an image of class 1', k.data?.[0] !== undefined && edmExtra(k.data[0]).class_label === 1);
  const wrong = new OpenAI({ baseURL: url + '/v1', apiKey: 'wrong', maxRetries: 0 });
  await expectError('a wrong API key', () => wrong.models.list(), 401,
    (e) => e instanceof OpenAI.AuthenticationError && e.type === 'authentication_error');
}

main().then(
  () => {
    console.log(T.pass + ' passed, ' + T.fail + ' failed, ' + T.skip + ' skipped');
    process.exit(T.fail ? 1 : 0);
  },
  (e) => {
    console.log('FAIL: ' + (e instanceof Error ? e.stack : String(e)));
    console.log(T.pass + ' passed, ' + (T.fail + 1) + ' failed, ' + T.skip + ' skipped');
    process.exit(1);
  },
);
