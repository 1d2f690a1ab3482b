/**
 * The client's assembler for incoming streams, sans-I/O: delivered frames in, events out
 * (mirror of `roomstreams/core/incoming.py`).
 *
 * It checks what the server promises (a chunk belongs to an open stream, chunk indexes count
 * from 0 without gaps) so that a broken promise ends that stream abnormally instead of
 * corrupting it, and merges trailer attributes over header attributes (trailer wins).
 */

import type { ByteChunk } from '../protocol/binary.js';
import { ErrorCode, type ChunkFrame, type DeliveredHeader, type DeliveredTrailer } from '../protocol/frames.js';

export interface StreamOpened {
  type: 'opened';
  header: DeliveredHeader;
}

export interface StreamChunk {
  type: 'chunk';
  streamId: string;
  /** `string` for a text stream, `Uint8Array` for a byte stream */
  content: string | Uint8Array;
}

export interface StreamEnded {
  type: 'ended';
  streamId: string;
  attributes: Record<string, string>;
  /** empty for a normal end */
  code: string;
  reason: string;
}

export type IncomingEvent = StreamOpened | StreamChunk | StreamEnded;

/** True when the stream did not end normally. */
export function isAbnormal(ev: StreamEnded): boolean {
  return ev.code !== '' || ev.reason !== '';
}

interface Open {
  header: DeliveredHeader;
  nextIndex: number;
}

export class Incoming {
  private readonly open = new Map<string, Open>();

  get openIds(): string[] {
    return [...this.open.keys()];
  }

  header(h: DeliveredHeader): IncomingEvent[] {
    if (this.open.has(h.stream_id)) return [];
    this.open.set(h.stream_id, { header: h, nextIndex: 0 });
    return [{ type: 'opened', header: h }];
  }

  chunk(c: ChunkFrame): IncomingEvent[] {
    return this.chunkOf(c.stream_id, c.chunk_index, c.content, 'text');
  }

  byteChunk(c: ByteChunk): IncomingEvent[] {
    return this.chunkOf(c.streamId, c.chunkIndex, c.payload, 'byte');
  }

  private chunkOf(sid: string, index: number, content: string | Uint8Array, kind: string): IncomingEvent[] {
    const st = this.open.get(sid);
    if (st === undefined) return []; // a stream ended here already (e.g. lag): late chunks are dropped
    if (st.header.kind !== kind) {
      this.open.delete(sid);
      const reason = `a ${kind} chunk arrived on a ${st.header.kind} stream`;
      return [ended(sid, { ...st.header.attributes }, ErrorCode.BAD_FRAME, reason)];
    }
    if (index !== st.nextIndex) {
      this.open.delete(sid);
      const reason = `chunk ${index} arrived, expected ${st.nextIndex}`;
      return [ended(sid, { ...st.header.attributes }, ErrorCode.LAGGED, reason)];
    }
    st.nextIndex += 1;
    return [{ type: 'chunk', streamId: sid, content }];
  }

  trailer(t: DeliveredTrailer): IncomingEvent[] {
    const st = this.open.get(t.stream_id);
    if (st === undefined) return [];
    this.open.delete(t.stream_id);
    const attributes = { ...st.header.attributes, ...t.attributes };
    const code = t.code || (t.reason ? ErrorCode.SENDER_REASON : '');
    return [ended(t.stream_id, attributes, code, t.reason)];
  }

  abortAll(code: string, reason: string): IncomingEvent[] {
    const events: IncomingEvent[] = [];
    for (const [sid, st] of this.open) events.push(ended(sid, { ...st.header.attributes }, code, reason));
    this.open.clear();
    return events;
  }
}

function ended(streamId: string, attributes: Record<string, string>, code: string, reason: string): StreamEnded {
  return { type: 'ended', streamId, attributes, code, reason };
}
