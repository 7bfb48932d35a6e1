// eventsource.test.mjs - a job's event stream through the standard EventSource client (npm
// eventsource, WHATWG rules: reconnect after the stream ends, send Last-Event-ID, stop on 204).
//
//  A. The case: follow a job to its end and keep listening for 10 s. The completed
//     handler fires exactly once; every event has an id, the ids run 1, 2, ... without a
//     repeat; the one reconnect after the end carries the final id, gets 204 and the client
//     stops (readyState CLOSED).
//  B. A stream that breaks in the middle (a fetch that cuts the first response after a few
//     events): the client reconnects with Last-Event-ID and gets the rest, nothing twice.
//
// Environment: EDMD_URL; STEPS (sampling steps of the jobs, default 8).
// Prints PASS/FAIL lines and "N passed, N failed, N skipped".
import { EventSource } from 'eventsource';

const URL_ = process.env.EDMD_URL;
const STEPS = Number(process.env.STEPS || 8);
const T = { pass: 0, fail: 0, skip: 0 };
function check(desc, cond, detail) {
  if (cond) { T.pass++; console.log('PASS: ' + desc); } else { T.fail++; console.log('FAIL: ' + desc + (detail === undefined ? '' : ': ' + JSON.stringify(detail))); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const NAMES = ['queued', 'running', 'progress', 'completed', 'failed', 'cancelled'];

async function newJob(seed) {
  const r = await fetch(URL_ + '/v1/jobs', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ seed, steps: STEPS, prompt: 'two' }),
  });
  return (await r.json()).id;
}

/* Follows a job for `windowMs` with EventSource (or until the client stops, when untilClosed);
 * cut(n): whether the n-th response (0-based) is to be cut after its first events. Returns
 * what happened. */
async function follow(id, windowMs, cut, untilClosed = false) {
  const seen = { events: [], requests: [], completed: 0, errors: [] };
  const fetchSpy = async (url, init) => {
    const n = seen.requests.length;
    seen.requests.push({ lastEventId: init.headers['Last-Event-ID'] ?? null });
    const resp = await fetch(url, init);
    seen.requests[n].status = resp.status;
    if (!cut(n) || resp.status !== 200) return resp;
    /* pass the stream through until an event with id >= 3 has gone by, then end it */
    const reader = resp.body.getReader();
    let text = '';
    const body = new ReadableStream({
      async pull(ctrl) {
        const { value, done } = await reader.read();
        if (done) { ctrl.close(); return; }
        ctrl.enqueue(value);
        text += new TextDecoder().decode(value);
        const m = [...text.matchAll(/id: (\d+)\n[^]*?\n\n/g)];
        if (m.length && Number(m[m.length - 1][1]) >= 3) { reader.cancel(); ctrl.close(); }
      },
    });
    return new Response(body, { status: resp.status, headers: resp.headers });
  };
  const es = new EventSource(URL_ + '/v1/jobs/' + id + '/events', { fetch: fetchSpy });
  for (const name of NAMES) {
    es.addEventListener(name, (ev) => {
      seen.events.push({ name, id: ev.lastEventId });
      if (name === 'completed') seen.completed++;
    });
  }
  es.onerror = (e) => seen.errors.push(e.code ?? e.message ?? 'error');
  for (const end = Date.now() + windowMs; Date.now() < end;) {
    if (untilClosed && es.readyState === EventSource.CLOSED) break;
    await sleep(100);
  }
  seen.readyState = es.readyState;
  es.close();
  return seen;
}

function checkStory(what, seen) {
  const ids = seen.events.map((e) => Number(e.id));
  check(what + ': every event has an id', seen.events.every((e) => /^\d+$/.test(e.id)), seen.events);
  check(what + ': ids 1, 2, ... each once, in order', ids.every((v, i) => v === i + 1), ids);
  check(what + ': queued, running, a progress per step, completed', seen.events.length === STEPS + 3 &&
    seen.events[0].name === 'queued' && seen.events[1].name === 'running' &&
    seen.events.filter((e) => e.name === 'progress').length === STEPS && seen.events.at(-1).name === 'completed',
  seen.events.map((e) => e.name));
  check(what + ': the completed handler fired exactly once', seen.completed === 1, seen.completed);
  const last = seen.requests.at(-1);
  check(what + ': the reconnect after the end sent the final id and got 204', last.status === 204 &&
    last.lastEventId === String(STEPS + 3), seen.requests);
  check(what + ': the client stopped (CLOSED)', seen.readyState === EventSource.CLOSED, seen.readyState);
}

const a = await follow(await newJob(1), 10000, () => false);
checkStory('A (10 s window)', a);
check('A: one stream, one reconnect (204), nothing more', a.requests.length === 2 && a.requests[0].status === 200 &&
  a.requests[0].lastEventId === null, a.requests);

const b = await follow(await newJob(2), 10000, (n) => n === 0, true);
checkStory('B (a stream cut after a few events)', b);
const resumed = b.requests[1];
check('B: the reconnect resumed from the last event it had', b.requests.length === 3 && resumed.status === 200 &&
  Number(resumed.lastEventId) >= 3 && Number(resumed.lastEventId) < STEPS + 3, b.requests);

console.log(T.pass + ' passed, ' + T.fail + ' failed, ' + T.skip + ' skipped');
process.exit(T.fail ? 1 : 0);
