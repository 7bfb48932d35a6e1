// openai_sdk.mts - edmd through the official openai SDK, as its users write it.
//
// test_clients.sh type-checks this file with tsc (strict, no casts in the SDK calls: what a
// TypeScript user writes compiles as it is), then runs the JavaScript tsc makes from it
// against a live edmd serving the bundled MNIST model. What edmd adds to OpenAI's answers
// (class_label, the PNG's Request text) is read through edmExtra(), the one deliberate cast.
//
// Environment: EDMD_URL (the daemon; unset: only the API key part), KEYED_URL and API_KEY (a
// daemon with an API key; unset: that part is left out), MODEL (a class-conditional model
// with class names, "mnist-edm").
// Prints PASS/FAIL lines and "N passed, N failed, N skipped".
import OpenAI from 'openai';

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
