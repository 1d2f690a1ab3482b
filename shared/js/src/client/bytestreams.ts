/**
 * Byte streams: reader and writer, and the sending side of `sendFile` and `streamBytes`
 * (mirror of `roomstreams/client/bytestreams.py`). Chunks travel as binary WebSocket frames.
 * Memory is bounded end to end: a File/Blob is read a block at a time and the socket's send
 * buffer paces the writer; a reader buffers at most `readerBuffer` unread bytes.
 */

import { encodeByteChunk } from '../protocol/binary.js';
import { headerFrame } from '../protocol/frames.js';
import { MAX_CHUNK_BYTES } from '../protocol/limits.js';
import { checkAttributes, checkDestinations, checkFileName, checkSize, checkStreamId, checkTopic } from './checks.js';
import {
  StreamReaderBase,
  StreamWriterBase,
  type ByteStreamInfo,
  type ReadAllOptions,
  type RoomLink,
} from './streams.js';
import { randomId } from './util.js';
import { InvalidInput } from '../exceptions.js';
import { ErrorCode } from '../protocol/frames.js';

export const DEFAULT_MIME_TYPE = 'application/octet-stream';
/** Bytes read from a Blob per step: a multiple of the 15000-byte chunk (no short chunk per block). */
export const FILE_BLOCK = 255_000;

/** An incoming byte stream: `for await (const chunk of reader)` (Uint8Array), or
 * `await reader.readAll()` (the chunks, as livekit-client returns them). */
export class ByteStreamReader extends StreamReaderBase<ByteStreamInfo, Uint8Array> {
  protected readonly unit = 'bytes';

  protected sizeOf(chunk: Uint8Array): number {
    return chunk.byteLength;
  }

  protected bytesOf(chunk: Uint8Array): number {
    return chunk.byteLength;
  }

  /** Bytes that have arrived so far (read or not). */
  get received(): number {
    return this.bytesReceived;
  }

  /** Every chunk, once the sender closed the stream (held in memory). */
  async readAll(options: ReadAllOptions = {}): Promise<Uint8Array[]> {
    const parts: Uint8Array[] = [];
    for (;;) {
      const r = await this.next(options.signal);
      if (r.done) return parts;
      parts.push(r.value);
    }
  }

  /** The whole content as one Blob (typed with the stream's MIME type). */
  async readBlob(options: ReadAllOptions = {}): Promise<Blob> {
    const parts = await this.readAll(options);
    return new Blob(parts as BlobPart[], { type: this.info.mimeType });
  }
}

/** An outgoing byte stream. Close it: receivers' readers end only when it is closed. */
export class ByteStreamWriter extends StreamWriterBase<ByteStreamInfo> {
  /** Send `data` in binary chunks of at most 15000 bytes; waits while the path is full. */
  write(data: Uint8Array): Promise<void> {
    return this._write(data);
  }

  /** @internal */
  _write(data: Uint8Array, onBytes?: (n: number) => void): Promise<void> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new InvalidInput('byte stream data must be a Uint8Array', ErrorCode.BAD_FRAME));
    }
    try {
      this.check();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      this.checkError();
      for (let start = 0; start < data.byteLength; start += MAX_CHUNK_BYTES) {
        const piece = data.subarray(start, start + MAX_CHUNK_BYTES);
        const frame = encodeByteChunk(this.streamId, this.index, piece);
        this.index += 1;
        await this.transport.send(frame);
        this.checkError();
        onBytes?.(piece.byteLength);
      }
    });
  }
}

export interface StreamBytesOptions {
  /** a plain file name (no path); livekit's default is "unknown" */
  name?: string;
  topic: string;
  attributes?: Record<string, string>;
  destinationIdentities?: string[];
  streamId?: string;
  mimeType?: string;
  totalSize?: number;
}

export async function openByteStream(room: RoomLink, options: StreamBytesOptions): Promise<ByteStreamWriter> {
  const topic = checkTopic(options?.topic);
  room.ensureCanPublish();
  const id = options.streamId === undefined ? randomId() : checkStreamId(options.streamId);
  const name = checkFileName(options.name ?? 'unknown', id);
  const size = checkSize(options.totalSize);
  const info: ByteStreamInfo = {
    id,
    mimeType: options.mimeType || DEFAULT_MIME_TYPE,
    topic,
    timestamp: Date.now(),
    attributes: checkAttributes(options.attributes),
    destinationIdentities: checkDestinations(options.destinationIdentities),
    name,
  };
  if (size !== undefined) info.size = size;
  const header = headerFrame({
    stream_id: id,
    topic,
    timestamp: info.timestamp,
    kind: 'byte',
    mime_type: info.mimeType,
    total_length: size ?? null,
    attributes: info.attributes,
    destination_identities: info.destinationIdentities,
    name,
  });
  const writer = new ByteStreamWriter(room, info);
  await room.openWriter(writer, header);
  return writer;
}

export type FileLike = Blob | Uint8Array | ArrayBuffer;

export interface SendFileOptions {
  topic: string;
  /** the stream's name; defaults to `file.name` (a File) */
  name?: string;
  /** defaults to `file.type`, else guessed from the name's extension */
  mimeType?: string;
  destinationIdentities?: string[];
  attributes?: Record<string, string>;
  streamId?: string;
  /** called as the file is sent: bytes sent / size, in [0, 1] */
  onProgress?: (progress: number) => void;
}

const MIME: Record<string, string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  csv: 'text/csv',
  js: 'text/javascript',
  json: 'application/json',
  xml: 'application/xml',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  mp4: 'video/mp4',
  webm: 'video/webm',
  bin: 'application/octet-stream',
};

/** The MIME type of a file name, from its extension; undefined when unknown. */
export function guessMimeType(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? MIME[name.slice(dot + 1).toLowerCase()] : undefined;
}

/** Send a File/Blob (read a block at a time) or bytes in memory as one byte stream; resolves
 * with its info once the router has routed its end. */
export async function sendFile(room: RoomLink, file: FileLike, options: SendFileOptions): Promise<ByteStreamInfo> {
  const isBlob = typeof Blob !== 'undefined' && file instanceof Blob;
  const bytes = file instanceof ArrayBuffer ? new Uint8Array(file) : file instanceof Uint8Array ? file : undefined;
  if (!isBlob && bytes === undefined) {
    throw new InvalidInput('sendFile takes a File, a Blob, a Uint8Array or an ArrayBuffer', ErrorCode.BAD_FRAME);
  }
  const name = options?.name ?? (file as { name?: unknown }).name;
  if (typeof name !== 'string' || name === '') {
    throw new InvalidInput('sendFile needs a name: pass a File, or options.name', ErrorCode.BAD_FRAME);
  }
  const blobType = isBlob ? (file as Blob).type : '';
  const size = isBlob ? (file as Blob).size : bytes!.byteLength;
  const writer = await openByteStream(room, {
    name,
    topic: options.topic,
    mimeType: options.mimeType || blobType || guessMimeType(name) || DEFAULT_MIME_TYPE,
    totalSize: size,
    destinationIdentities: options.destinationIdentities,
    attributes: options.attributes,
    streamId: options.streamId,
  });
  let sent = 0;
  const progress = options.onProgress;
  const onBytes = (n: number): void => {
    sent += n;
    if (progress) {
      try {
        progress(size === 0 ? 1 : sent / size);
      } catch {
        // a progress callback must not break the upload
      }
    }
  };
  try {
    for (let start = 0; start < size; start += FILE_BLOCK) {
      const end = Math.min(start + FILE_BLOCK, size);
      const block = isBlob
        ? new Uint8Array(await (file as Blob).slice(start, end).arrayBuffer())
        : bytes!.subarray(start, end);
      await writer._write(block, onBytes);
    }
    await writer.close();
  } catch (e) {
    await writer.abort(`writer failed: ${String(e)}`);
    throw e;
  }
  if (size === 0) onBytes(0);
  return writer.info;
}
