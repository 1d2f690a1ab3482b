#!/usr/bin/env node
// `node shared/js/bench/receivers.mjs`: a W3p receiver process on the TypeScript client, a
// drop-in for `python -m roomstreams.bench.w3p_receivers` (same protocol, one JSON object a
// line): N receivers (each a `Room` of the built package) in one Node process, so fan-out
// figures measure the servers rather than the Python client.
//
// 1. stdin, first line: {"receivers": [[name, url, token], ...], "concurrency": n,
//    "connect_timeout": s, "topic"?: "bench"}. Connects them all (at most `concurrency` at a
//    time), each with its text stream handler registered first, then prints
//    {"event": "ready", "connected": n, "pid": pid} (or {"event": "error", ...} and exits 1).
// 2. Each chunk starts with 10 digits of sequence number and 19 digits of the sender's
//    CLOCK_MONOTONIC nanoseconds (Python's time.monotonic_ns(); Node's process.hrtime is the
//    same clock on Linux). Per chunk a receiver notes its own clock minus the stamp and checks
//    the sequence. When every receiver of this process finished a stream:
//    {"event": "finished", "sid": stream_id}.
// 3. {"cmd": "report", "sid"} -> {"event": "report", "sid", "connected", "receivers": {name:
//    {"count", "in_order", "ended", "error", "last_ns"}}, "latencies_ns": base64 of int64s in
//    native byte order}; the stream's records are dropped then.
// 4. {"cmd": "quit"}, end of stdin, SIGTERM or SIGINT: every receiver disconnects (bounded in
//    time) and the process exits.
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.ROOMSTREAMS_JS ?? join(here, '../dist/roomstreams.js');
const { Room, ConnectionState, StreamAborted } = await import(pathToFileURL(dist).href);

const SEQ_DIGITS = 10;
const STAMP_END = SEQ_DIGITS + 19;

const emit = (msg) => {
  try {
    process.stdout.write(`${JSON.stringify(msg)}\n`);
  } catch {
    void shutdown(141);
  }
};
process.stdout.on('error', () => void shutdown(141)); // the benchmark went away

class Stream {
  rx = new Map();
  latencies = new Float64Array(1024);
  n = 0;
  finished = 0;

  add(ns) {
    if (this.n === this.latencies.length) {
      const bigger = new Float64Array(this.latencies.length * 2);
      bigger.set(this.latencies);
      this.latencies = bigger;
    }
    this.latencies[this.n++] = ns;
  }
}

const streams = new Map();
const rooms = [];
let expected = 0;
const now = () => Number(process.hrtime.bigint());

function handler(name) {
  return async (reader) => {
    const sid = reader.info.id;
    let st = streams.get(sid);
    if (!st) streams.set(sid, (st = new Stream()));
    const rx = { count: 0, in_order: true, ended: false, error: null, last_ns: 0, next: 0 };
    st.rx.set(name, rx);
    try {
      for await (const chunk of reader) {
        const t = now();
        const seq = Number(chunk.slice(0, SEQ_DIGITS));
        if (seq !== rx.next) rx.in_order = false;
        rx.next = seq + 1;
        rx.count += 1;
        rx.last_ns = t;
        st.add(t - Number(chunk.slice(SEQ_DIGITS, STAMP_END)));
      }
      rx.ended = true;
    } catch (e) {
      rx.error = e instanceof StreamAborted ? `${e.code}: ${e.message}` : String(e);
    } finally {
      st.finished += 1;
      if (st.finished === expected) emit({ event: 'finished', sid });
    }
  };
}

function report(sid) {
  const st = streams.get(sid) ?? new Stream();
  streams.delete(sid);
  const lat = new BigInt64Array(st.n);
  for (let i = 0; i < st.n; i++) lat[i] = BigInt(Math.round(st.latencies[i]));
  const receivers = {};
  for (const [name, r] of st.rx) {
    receivers[name] = { count: r.count, in_order: r.in_order, ended: r.ended, error: r.error, last_ns: r.last_ns };
  }
  return {
    event: 'report',
    sid,
    connected: rooms.filter((r) => r.state === ConnectionState.Connected).length,
    receivers,
    latencies_ns: Buffer.from(lat.buffer).toString('base64'),
  };
}

async function bounded(limit, jobs) {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

let stopping;
function shutdown(code) {
  stopping ??= (async () => {
    const timeout = new Promise((resolve) => setTimeout(resolve, 10_000));
    await Promise.race([Promise.allSettled(rooms.map((r) => r.disconnect())), timeout]);
    process.exit(code);
  })();
  return stopping;
}
process.on('SIGTERM', () => void shutdown(143));
process.on('SIGINT', () => void shutdown(130));

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
const first = await lines.next();
if (first.done) process.exit(0);
const cfg = JSON.parse(first.value);
const specs = cfg.receivers;
const topic = cfg.topic ?? 'bench';
expected = specs.length;
try {
  await bounded(
    Number(cfg.concurrency ?? 25),
    specs.map(([name, url, token]) => async () => {
      const room = new Room();
      room.registerTextStreamHandler(topic, handler(name));
      await room.connect(url, token, { websocketTimeout: Number(cfg.connect_timeout ?? 30) * 1000 });
      rooms.push(room);
    }),
  );
} catch (e) {
  emit({ event: 'error', error: `connect: ${String(e)}` });
  await shutdown(1);
}
emit({ event: 'ready', connected: rooms.length, pid: process.pid });
for (;;) {
  const line = await lines.next();
  if (line.done) break;
  if (!line.value.trim()) continue;
  const cmd = JSON.parse(line.value);
  if (cmd.cmd === 'quit') break;
  if (cmd.cmd === 'report') emit(report(String(cmd.sid)));
}
await shutdown(0);
