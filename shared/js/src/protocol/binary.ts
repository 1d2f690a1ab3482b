/**
 * Binary WebSocket frames: byte-stream chunks and data packets (mirror of
 * `roomstreams/protocol/binary.py`). Every JSON frame starts with `{`; a binary frame starts
 * with a type byte that is never `{`.
 *
 * Byte chunk (`0x01`): `0x01 | u8 len(stream_id) | stream_id (UTF-8) | u32 BE chunk_index | payload`
 *
 * Data packet (`0x02`): `0x02 | u8 flags | u16 BE len(meta) | meta (JSON) | payload`; flags bit 0
 * is `reliable`. The client's meta is `{"topic", "destination_identities"}`; delivered packets
 * carry the sender's identity, stamped by its gateway, as `sender`.
 */

import { MAX_STREAM_ID_BYTES } from './limits.js';

export const BYTE_CHUNK = 0x01;
export const DATA_PACKET = 0x02;
export const FLAG_RELIABLE = 0x01;
/** a u32 packet number follows the flags: the sender awaits the router's `data_ack` */
export const FLAG_NUMBERED = 0x02;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A binary frame that does not follow the layout above. */
export class BadBinaryFrame extends Error {
  override name = 'BadBinaryFrame';
}

/** True for a frame of this module (its first byte is a known type byte). */
export function isBinary(frame: Uint8Array): boolean {
  return frame.length > 0 && (frame[0] === BYTE_CHUNK || frame[0] === DATA_PACKET);
}

export interface ByteChunk {
  streamId: string;
  chunkIndex: number;
  payload: Uint8Array;
}

export function encodeByteChunk(streamId: string, chunkIndex: number, payload: Uint8Array): Uint8Array {
  const sid = encoder.encode(streamId);
  if (sid.length === 0 || sid.length > Math.min(255, MAX_STREAM_ID_BYTES)) {
    throw new RangeError(`stream id must be 1 to ${MAX_STREAM_ID_BYTES} UTF-8 bytes`);
  }
  if (!Number.isInteger(chunkIndex) || chunkIndex < 0 || chunkIndex > 0xffffffff) {
    throw new RangeError(`chunk index ${chunkIndex} out of range`);
  }
  const out = new Uint8Array(2 + sid.length + 4 + payload.length);
  out[0] = BYTE_CHUNK;
  out[1] = sid.length;
  out.set(sid, 2);
  new DataView(out.buffer).setUint32(2 + sid.length, chunkIndex, false);
  out.set(payload, 6 + sid.length);
  return out;
}

/** Parse a byte chunk frame; throws {@link BadBinaryFrame} when it is malformed. The payload is
 * a view into `frame`. */
export function decodeByteChunk(frame: Uint8Array): ByteChunk {
  if (frame.length < 2 || frame[0] !== BYTE_CHUNK) throw new BadBinaryFrame('not a byte chunk frame');
  const n = frame[1]!;
  const end = 2 + n;
  if (n === 0 || frame.length < end + 4) {
    throw new BadBinaryFrame('byte chunk frame too short for its stream id and chunk index');
  }
  let streamId: string;
  try {
    streamId = decoder.decode(frame.subarray(2, end));
  } catch {
    throw new BadBinaryFrame('byte chunk stream id is not valid UTF-8');
  }
  const chunkIndex = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(end, false);
  return { streamId, chunkIndex, payload: frame.subarray(end + 4) };
}

export interface DataPacketFrame {
  flags: number;
  reliable: boolean;
  meta: Uint8Array;
  payload: Uint8Array;
  /** the sender's packet number (0: not numbered) */
  number: number;
}

/** The JSON meta of a data packet as a client sends it. */
export interface DataMeta {
  topic: string;
  destination_identities: string[];
}

/** The meta as a receiver sees it. */
export interface DeliveredDataMeta extends DataMeta {
  sender: string;
}

/** `number` > 0 numbers the packet: the sender awaits the router's `data_ack` covering it
 * (flag bit 1, a u32 BE number after the flags). */
export function encodeDataPacket(meta: Uint8Array, payload: Uint8Array, reliable = true, number = 0): Uint8Array {
  if (meta.length > 0xffff) throw new RangeError('data packet meta longer than 65535 bytes');
  if (number < 0 || number > 0xffffffff || !Number.isInteger(number)) {
    throw new RangeError('data packet number out of range');
  }
  const head = number ? 6 : 2;
  const out = new Uint8Array(head + 2 + meta.length + payload.length);
  const view = new DataView(out.buffer);
  out[0] = DATA_PACKET;
  out[1] = (reliable ? FLAG_RELIABLE : 0) | (number ? FLAG_NUMBERED : 0);
  if (number) view.setUint32(2, number, false);
  view.setUint16(head, meta.length, false);
  out.set(meta, head + 2);
  out.set(payload, head + 2 + meta.length);
  return out;
}

/** Split a data packet frame (the meta is not parsed); {@link BadBinaryFrame} when malformed. */
export function decodeDataPacket(frame: Uint8Array): DataPacketFrame {
  if (frame.length < 4 || frame[0] !== DATA_PACKET) throw new BadBinaryFrame('data packet frame too short');
  const flags = frame[1]!;
  if (flags & ~(FLAG_RELIABLE | FLAG_NUMBERED)) {
    throw new BadBinaryFrame(`unknown data packet flags 0x${flags.toString(16).padStart(2, '0')}`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let at = 2;
  let number = 0;
  if (flags & FLAG_NUMBERED) {
    if (frame.length < 8) throw new BadBinaryFrame('data packet frame too short for its number');
    number = view.getUint32(2, false);
    if (number === 0) throw new BadBinaryFrame('data packet number 0 (numbers start at 1)');
    at = 6;
  }
  const n = view.getUint16(at, false);
  const start = at + 2;
  if (frame.length < start + n) throw new BadBinaryFrame('data packet frame too short for its meta');
  return {
    flags,
    reliable: (flags & FLAG_RELIABLE) !== 0,
    meta: frame.subarray(start, start + n),
    payload: frame.subarray(start + n),
    number,
  };
}

/** Parse a delivered data packet's meta; {@link BadBinaryFrame} when it is not the expected
 * JSON object. */
export function parseDeliveredMeta(meta: Uint8Array): DeliveredDataMeta {
  let obj: unknown;
  try {
    obj = JSON.parse(decoder.decode(meta));
  } catch (e) {
    throw new BadBinaryFrame(`data packet meta is not JSON: ${String(e)}`);
  }
  if (typeof obj !== 'object' || obj === null) throw new BadBinaryFrame('data packet meta is not an object');
  const o = obj as Record<string, unknown>;
  const dests = o['destination_identities'] ?? [];
  if (
    typeof o['sender'] !== 'string' ||
    typeof (o['topic'] ?? '') !== 'string' ||
    !Array.isArray(dests) ||
    !dests.every((d) => typeof d === 'string')
  ) {
    throw new BadBinaryFrame('data packet meta has missing or mistyped fields');
  }
  return { sender: o['sender'], topic: (o['topic'] as string | undefined) ?? '', destination_identities: dests };
}
