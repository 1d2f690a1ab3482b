import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { StreamAborted, StreamClosed, ServerError, StreamSizeMismatch, InvalidInput } from '../src/exceptions.js';
import {
  TextStreamReader,
  TextStreamWriter,
  type TextStreamInfo,
  type WriterTransport,
} from '../src/client/streams.js';
import { ByteStreamReader } from '../src/client/bytestreams.js';
import { dataPacketFrame } from '../src/client/data.js';
import { rtcUrl } from '../src/client/socket.js';
import { checkTopic } from '../src/client/checks.js';

const info = (size?: number): TextStreamInfo => ({
  id: 's1',
  mimeType: 'text/plain',
  topic: 't',
  timestamp: 1,
  attributes: {},
  destinationIdentities: [],
  operationType: 'create',
  version: 0,
  attachedStreamIds: [],
  generated: false,
  ...(size === undefined ? {} : { size }),
});

test('a reader yields chunks in order and ends normally; readAll joins them', async () => {
  const r = new TextStreamReader(info(), 'bob', 1000);
  r._feed('a');
  setTimeout(() => {
    r._feed('b');
    r._end(undefined, { done: 'yes' });
  }, 5);
  assert.equal(await r.readAll(), 'ab');
  assert.deepEqual(r.info.attributes, { done: 'yes' });
  assert.ok(r.closed);
});

test('an abnormal end yields what arrived, then throws StreamAborted with the code and reason', async () => {
  const r = new TextStreamReader(info(), 'bob', 1000);
  r._feed('partial');
  r._end(new StreamAborted('bob left the room', { code: 'sender_left', streamId: 's1', sender: 'bob' }));
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const c of r) seen.push(c);
    })(),
    (e: unknown) =>
      e instanceof StreamAborted &&
      e.code === 'sender_left' &&
      e.message === 'stream ended abnormally (sender_left): bob left the room',
  );
  assert.deepEqual(seen, ['partial']);
});

test('a reader that is not read past its buffer ends as slow_consumer', async () => {
  const r = new TextStreamReader(info(), 'bob', 10);
  r._feed('12345');
  r._feed('678901');
  await assert.rejects(r.readAll(), (e: unknown) => e instanceof StreamAborted && e.code === 'slow_consumer');
});

test('onProgress reports received bytes over the announced size', () => {
  const r = new ByteStreamReader({ ...info(4), name: 'f' }, 'bob', 1000);
  const seen: (number | undefined)[] = [];
  r.onProgress = (p) => seen.push(p);
  r._feed(new Uint8Array(1));
  r._feed(new Uint8Array(3));
  assert.deepEqual(seen, [0.25, 1]);
  assert.equal(r.received, 4);
});

test('readAll rejects when its signal aborts', async () => {
  const r = new TextStreamReader(info(), 'bob', 1000);
  const ac = new AbortController();
  const p = r.readAll({ signal: ac.signal });
  ac.abort(new Error('enough'));
  await assert.rejects(p, /enough/);
});

class Recorder implements WriterTransport {
  frames: (string | Uint8Array)[] = [];
  forgotten: string[] = [];
  async send(frame: string | Uint8Array): Promise<void> {
    this.frames.push(frame);
  }
  forgetWriter(id: string): void {
    this.forgotten.push(id);
  }
}

test('a writer chunks at 15000 UTF-8 bytes, numbers chunks, and close waits for the router', async () => {
  const t = new Recorder();
  const w = new TextStreamWriter(t, info());
  await w.write('é'.repeat(10_000)); // 20000 bytes: two chunks
  await w.write('x');
  const closing = w.close();
  let closed = false;
  void closing.then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(closed, false, 'close() resolved before the closed frame');
  w._routed();
  await closing;
  const frames = t.frames.map((f) => JSON.parse(f as string));
  assert.deepEqual(
    frames.map((f) => [f.type, f.chunk_index]),
    [
      ['chunk', 0],
      ['chunk', 1],
      ['chunk', 2],
      ['trailer', undefined],
    ],
  );
  assert.equal(frames[0].content.length, 7500);
  assert.equal(w.state, 'closed');
  assert.deepEqual(t.forgotten, ['s1']);
  await assert.rejects(w.write('late'), StreamClosed);
  await assert.rejects(w.close(), StreamClosed); // closing twice is an error, as in Python
});

test('writes queued before close are sent before the trailer', async () => {
  const t = new Recorder();
  const w = new TextStreamWriter(t, info());
  const writes = [w.write('a'), w.write('b')];
  const closing = w.close('');
  w._routed();
  await Promise.all([...writes, closing]);
  assert.deepEqual(
    t.frames.map((f) => JSON.parse(f as string).type),
    ['chunk', 'chunk', 'trailer'],
  );
});

test('a server error fails the writer: size_mismatch as StreamSizeMismatch, others as StreamAborted', async () => {
  const w = new TextStreamWriter(new Recorder(), info());
  w._fail(new ServerError('bad_topic', 'topic must not be empty'));
  await assert.rejects(w.write('x'), (e: unknown) => e instanceof StreamAborted && e.code === 'bad_topic');
  await assert.rejects(w.close(), StreamAborted);
  const w2 = new TextStreamWriter(new Recorder(), info());
  w2._fail(new ServerError('size_mismatch', 'closed after 1 bytes'));
  await assert.rejects(w2.close(), StreamSizeMismatch);
});

test('a lone surrogate is refused before sending', async () => {
  const t = new Recorder();
  const w = new TextStreamWriter(t, info());
  await assert.rejects(w.write('bad \ud800'), (e: unknown) => e instanceof InvalidInput && e.code === 'bad_utf8');
  assert.equal(t.frames.length, 0);
});

test('data packets over 15000 bytes and bad topics are refused with codes', () => {
  assert.throws(
    () => dataPacketFrame(new Uint8Array(15_361)),
    (e: unknown) => e instanceof InvalidInput && e.code === 'data_too_large',
  );
  assert.equal(
    dataPacketFrame(new Uint8Array(15_360)).length,
    15_360 + 4 + '{"topic":"","destination_identities":[]}'.length,
  );
  assert.equal(checkTopic(''), ''); // LiveKit's default topic
  assert.equal(checkTopic(undefined), '');
  assert.throws(() => checkTopic('x'.repeat(257)), /exceeds 256/);
});

test('rtcUrl: http(s) becomes ws(s), /rtc is added once, the token is escaped', () => {
  assert.equal(rtcUrl('http://h:7880', 'a.b'), 'ws://h:7880/rtc?access_token=a.b');
  assert.equal(rtcUrl('https://h/', 't'), 'wss://h/rtc?access_token=t');
  assert.equal(rtcUrl('ws://h:1/prefix/rtc', 'x y'), 'ws://h:1/prefix/rtc?access_token=x%20y');
  assert.throws(() => rtcUrl('ftp://h', 't'), /must start with ws/);
});

const minBundle = new URL('../../dist/roomstreams.min.js', import.meta.url);
test(
  'errors keep their names in the (minified) bundle',
  { skip: !existsSync(minBundle) && 'dist/ is not built (npm run build)' },
  async () => {
    const rs = await import(minBundle.href);
    assert.equal(new rs.RpcError(1, 'm').name, 'RpcError');
    assert.equal(new rs.StreamAborted('r', { code: 'lagged' }).name, 'StreamAborted');
    assert.equal(new rs.InvalidInput('m', 'bad_topic').name, 'InvalidInput');
    assert.ok(new rs.AuthError('m') instanceof rs.RoomStreamsError);
  },
);
