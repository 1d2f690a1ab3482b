import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BadBinaryFrame,
  BYTE_CHUNK,
  DATA_PACKET,
  decodeByteChunk,
  decodeDataPacket,
  encodeByteChunk,
  encodeDataPacket,
  isBinary,
  parseDeliveredMeta,
} from '../src/protocol/binary.js';

const enc = new TextEncoder();

test('byte chunk layout: type, stream id length, stream id, u32 BE index, payload', () => {
  const frame = encodeByteChunk('ab', 258, new Uint8Array([9, 8, 7]));
  assert.deepEqual([...frame], [BYTE_CHUNK, 2, 0x61, 0x62, 0, 0, 1, 2, 9, 8, 7]);
  const c = decodeByteChunk(frame);
  assert.equal(c.streamId, 'ab');
  assert.equal(c.chunkIndex, 258);
  assert.deepEqual([...c.payload], [9, 8, 7]);
  assert.ok(isBinary(frame));
  assert.ok(!isBinary(enc.encode('{"type":"chunk"}')));
});

test('byte chunk round trip with a large index and a view into a bigger buffer', () => {
  const payload = new Uint8Array(15_000).map((_, i) => i % 251);
  const frame = encodeByteChunk('stream-é', 0xfffffffe, payload);
  const padded = new Uint8Array(frame.length + 10);
  padded.set(frame, 5);
  const c = decodeByteChunk(padded.subarray(5, 5 + frame.length));
  assert.equal(c.streamId, 'stream-é');
  assert.equal(c.chunkIndex, 0xfffffffe);
  assert.deepEqual(c.payload, payload);
});

test('malformed byte chunks are refused', () => {
  assert.throws(() => decodeByteChunk(new Uint8Array([BYTE_CHUNK])), BadBinaryFrame);
  assert.throws(() => decodeByteChunk(new Uint8Array([BYTE_CHUNK, 0, 0, 0, 0, 0])), BadBinaryFrame);
  assert.throws(() => decodeByteChunk(new Uint8Array([BYTE_CHUNK, 3, 0x61, 0, 0])), BadBinaryFrame);
  assert.throws(() => decodeByteChunk(new Uint8Array([BYTE_CHUNK, 1, 0xff, 0, 0, 0, 0])), /UTF-8/);
  assert.throws(() => encodeByteChunk('', 0, new Uint8Array()), RangeError);
  assert.throws(() => encodeByteChunk('x'.repeat(129), 0, new Uint8Array()), RangeError);
});

test('data packet layout: type, flags, u16 BE meta length, meta, payload', () => {
  const meta = enc.encode('{"topic":"t"}');
  const frame = encodeDataPacket(meta, new Uint8Array([1, 2]), false);
  assert.deepEqual([...frame.subarray(0, 4)], [DATA_PACKET, 0, 0, meta.length]);
  const p = decodeDataPacket(frame);
  assert.equal(p.reliable, false);
  assert.deepEqual(p.meta, meta);
  assert.deepEqual([...p.payload], [1, 2]);
  assert.equal(decodeDataPacket(encodeDataPacket(meta, new Uint8Array(), true)).reliable, true);
});

test('malformed data packets are refused', () => {
  assert.throws(() => decodeDataPacket(new Uint8Array([DATA_PACKET, 0, 0])), BadBinaryFrame);
  assert.throws(() => decodeDataPacket(new Uint8Array([DATA_PACKET, 4, 0, 0])), /unknown data packet flags 0x04/);
  assert.throws(() => decodeDataPacket(new Uint8Array([DATA_PACKET, 0, 0, 5, 1])), /too short for its meta/);
});

test('delivered meta is parsed and checked', () => {
  const m = parseDeliveredMeta(enc.encode('{"topic":"t","destination_identities":["a"],"sender":"bob"}'));
  assert.deepEqual(m, { topic: 't', destination_identities: ['a'], sender: 'bob' });
  assert.throws(() => parseDeliveredMeta(enc.encode('{"topic":"t"}')), BadBinaryFrame);
  assert.throws(() => parseDeliveredMeta(enc.encode('nope')), BadBinaryFrame);
});

test('numbered data packet: flag bit 1, u32 BE number after the flags, then meta length', () => {
  const meta = new TextEncoder().encode('{"topic":"t"}');
  const frame = encodeDataPacket(meta, new Uint8Array([9]), true, 70000);
  assert.equal(frame[1], 0x03);
  assert.equal(new DataView(frame.buffer).getUint32(2, false), 70000);
  const p = decodeDataPacket(frame);
  assert.equal(p.number, 70000);
  assert.equal(p.reliable, true);
  assert.deepEqual([...p.meta], [...meta]);
  assert.deepEqual([...p.payload], [9]);
  assert.equal(decodeDataPacket(encodeDataPacket(meta, new Uint8Array(), true)).number, 0);
  assert.throws(() => decodeDataPacket(frame.subarray(0, 7)), BadBinaryFrame);
  assert.throws(() => decodeDataPacket(new Uint8Array([2, 3, 0, 0, 0, 0, 0, 0])), BadBinaryFrame);
});
