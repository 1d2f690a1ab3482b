import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Incoming, isAbnormal, type StreamEnded } from '../src/core/incoming.js';
import { headerFrame, type DeliveredHeader } from '../src/protocol/frames.js';

function header(id: string, kind: 'text' | 'byte' = 'text', attributes: Record<string, string> = {}): DeliveredHeader {
  return { ...headerFrame({ stream_id: id, topic: 't', timestamp: 1, kind, attributes }), sender: 'bob' };
}

const chunk = (id: string, i: number, content = 'x') => ({
  type: 'chunk' as const,
  stream_id: id,
  chunk_index: i,
  content,
});
const trailer = (id: string, reason = '', code = '', attributes: Record<string, string> = {}) => ({
  type: 'trailer' as const,
  stream_id: id,
  reason,
  code,
  attributes,
});

test('a stream opens once, its chunks pass in order, its trailer ends it normally', () => {
  const inc = new Incoming();
  assert.deepEqual(
    inc.header(header('s')).map((e) => e.type),
    ['opened'],
  );
  assert.deepEqual(inc.header(header('s')), []); // a repeated header is ignored
  assert.deepEqual(inc.chunk(chunk('s', 0, 'a')), [{ type: 'chunk', streamId: 's', content: 'a' }]);
  assert.deepEqual(inc.chunk(chunk('s', 1, 'b')), [{ type: 'chunk', streamId: 's', content: 'b' }]);
  const [end] = inc.trailer(trailer('s')) as StreamEnded[];
  assert.equal(end!.code, '');
  assert.ok(!isAbnormal(end!));
  assert.deepEqual(inc.openIds, []);
});

test('trailer attributes are merged over header attributes', () => {
  const inc = new Incoming();
  inc.header(header('s', 'text', { a: '1', b: '2' }));
  const [end] = inc.trailer(trailer('s', '', '', { b: '3', c: '4' })) as StreamEnded[];
  assert.deepEqual(end!.attributes, { a: '1', b: '3', c: '4' });
});

test('a gap in chunk indexes ends the stream as lagged; later chunks are dropped', () => {
  const inc = new Incoming();
  inc.header(header('s'));
  inc.chunk(chunk('s', 0));
  const [end] = inc.chunk(chunk('s', 2)) as StreamEnded[];
  assert.equal(end!.type, 'ended');
  assert.equal(end!.code, 'lagged');
  assert.equal(end!.reason, 'chunk 2 arrived, expected 1');
  assert.deepEqual(inc.chunk(chunk('s', 3)), []);
  assert.deepEqual(inc.trailer(trailer('s')), []);
});

test('a chunk of the wrong kind ends the stream as bad_frame', () => {
  const inc = new Incoming();
  inc.header(header('b', 'byte'));
  const [end] = inc.chunk(chunk('b', 0)) as StreamEnded[];
  assert.equal(end!.code, 'bad_frame');
  assert.match(end!.reason, /a text chunk arrived on a byte stream/);
  inc.header(header('t', 'text'));
  const [end2] = inc.byteChunk({ streamId: 't', chunkIndex: 0, payload: new Uint8Array([1]) }) as StreamEnded[];
  assert.equal(end2!.code, 'bad_frame');
});

test('chunks of unknown streams are dropped', () => {
  assert.deepEqual(new Incoming().chunk(chunk('nope', 0)), []);
});

test("abnormal ends: a reason alone is the sender's, a code is the system's", () => {
  const inc = new Incoming();
  inc.header(header('a'));
  inc.header(header('b'));
  const [a] = inc.trailer(trailer('a', 'changed my mind')) as StreamEnded[];
  assert.equal(a!.code, 'sender_reason');
  assert.ok(isAbnormal(a!));
  const [b] = inc.trailer(trailer('b', 'bob left', 'sender_left')) as StreamEnded[];
  assert.equal(b!.code, 'sender_left');
  assert.equal(b!.reason, 'bob left');
});

test('abortAll ends every open stream', () => {
  const inc = new Incoming();
  inc.header(header('a'));
  inc.header(header('b', 'byte'));
  const ends = inc.abortAll('connection_lost', 'gone') as StreamEnded[];
  assert.deepEqual(
    ends.map((e) => [e.streamId, e.code, e.reason]),
    [
      ['a', 'connection_lost', 'gone'],
      ['b', 'connection_lost', 'gone'],
    ],
  );
  assert.deepEqual(inc.openIds, []);
});
