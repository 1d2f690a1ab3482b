/** Stream info, readers and writers (the objects handlers and senders hold); mirror of
 * `roomstreams/client/streams.py` with livekit-client's names. */

import { ServerError, StreamAborted, StreamClosed, StreamError, StreamSizeMismatch } from '../exceptions.js';
import { splitUtf8, utf8Len } from '../protocol/chunking.js';
import {
  chunkFrame,
  ErrorCode,
  trailerFrame,
  type DeliveredHeader,
  type HeaderFrame,
  type OperationType,
} from '../protocol/frames.js';
import { checkAttributes, checkText } from './checks.js';
import { deferred, type Deferred } from './util.js';

/** Text (UTF-16 units) or bytes a reader buffers unread before its stream is ended for a
 * consumer that does not read (`slow_consumer`). */
export const DEFAULT_READER_BUFFER = 64 * 1024 * 1024;

export interface BaseStreamInfo {
  /** the stream id */
  id: string;
  mimeType: string;
  topic: string;
  /** milliseconds since the epoch, set by the sender */
  timestamp: number;
  /** total size in bytes for finite streams, undefined for streams of unknown size */
  size?: number;
  attributes: Record<string, string>;
  destinationIdentities: string[];
}

export interface TextStreamInfo extends BaseStreamInfo {
  operationType: OperationType;
  version: number;
  replyToId?: string;
  attachedStreamIds: string[];
  generated: boolean;
}

export interface ByteStreamInfo extends BaseStreamInfo {
  name: string;
}

export function textInfoFromHeader(h: DeliveredHeader): TextStreamInfo {
  const info: TextStreamInfo = {
    id: h.stream_id,
    mimeType: h.mime_type,
    topic: h.topic,
    timestamp: h.timestamp,
    attributes: { ...h.attributes },
    destinationIdentities: [...h.destination_identities],
    operationType: h.operation_type,
    version: h.version,
    attachedStreamIds: [...h.attached_stream_ids],
    generated: h.generated,
  };
  if (h.total_length !== null) info.size = h.total_length;
  if (h.reply_to_id !== null) info.replyToId = h.reply_to_id;
  return info;
}

export function byteInfoFromHeader(h: DeliveredHeader): ByteStreamInfo {
  const info: ByteStreamInfo = {
    id: h.stream_id,
    mimeType: h.mime_type,
    topic: h.topic,
    timestamp: h.timestamp,
    attributes: { ...h.attributes },
    destinationIdentities: [...h.destination_identities],
    name: h.name ?? '',
  };
  if (h.total_length !== null) info.size = h.total_length;
  return info;
}

export interface ReadAllOptions {
  /** Stops waiting (rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

const END = Symbol('end');

/**
 * What text and byte readers share: a bounded buffer of chunks (a consumer that lets more
 * than `maxBuffer` pile up unread has its stream ended as `slow_consumer`), the end of the
 * stream, `for await`. An abnormal end yields what arrived before it, then throws a
 * {@link StreamAborted} saying why (its `code` and `reason` are the abnormal trailer's).
 */
export abstract class StreamReaderBase<
  Info extends BaseStreamInfo,
  Chunk extends string | Uint8Array,
> implements AsyncIterable<Chunk> {
  readonly info: Info;
  /** the sender's identity */
  readonly participantIdentity: string;
  /** Called as chunks arrive: bytes received / size, undefined while the size is unknown. */
  onProgress?: (progress: number | undefined) => void;

  protected bytesReceived = 0;
  private readonly items: Array<Chunk | typeof END> = [];
  private waiter: (() => void) | undefined;
  private buffered = 0;
  private readonly maxBuffer: number;
  private error: StreamAborted | undefined;
  private ended = false;

  constructor(info: Info, sender: string, maxBuffer: number) {
    this.info = info;
    this.participantIdentity = sender;
    this.maxBuffer = maxBuffer;
  }

  /** True once the stream ended (normally or not). */
  get closed(): boolean {
    return this.ended;
  }

  protected abstract sizeOf(chunk: Chunk): number;
  protected abstract bytesOf(chunk: Chunk): number;
  protected abstract readonly unit: string;

  /** @internal fed by the room */
  _feed(content: Chunk): void {
    if (this.ended || content.length === 0) return; // an empty chunk is not yielded (as in LiveKit)
    this.bytesReceived += this.bytesOf(content);
    this.buffered += this.sizeOf(content);
    if (this.buffered > this.maxBuffer) {
      this._end(
        new StreamAborted(`reader buffered more than ${this.maxBuffer} ${this.unit} unread`, {
          code: ErrorCode.SLOW_CONSUMER,
          streamId: this.info.id,
          sender: this.participantIdentity,
        }),
      );
      return;
    }
    this.items.push(content);
    this.wake();
    if (this.onProgress) {
      const size = this.info.size;
      try {
        this.onProgress(size ? Math.min(this.bytesReceived / size, 1) : undefined);
      } catch {
        // a progress callback must not break the stream
      }
    }
  }

  /** @internal the stream ended; `error` when abnormally */
  _end(error?: StreamAborted, attributes?: Record<string, string>): void {
    if (this.ended) return;
    this.ended = true;
    if (attributes !== undefined) this.info.attributes = attributes;
    this.error = error;
    // what arrived before an abnormal end is still yielded, then the error is thrown; only an
    // overflowing buffer is dropped (that is the point of ending it)
    if (error?.code === ErrorCode.SLOW_CONSUMER) this.items.length = 0;
    this.items.push(END);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next chunk; `done` at the end of a normal stream; throws {@link StreamAborted}. */
  async next(signal?: AbortSignal): Promise<IteratorResult<Chunk, undefined>> {
    while (this.items.length === 0) {
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve, reject) => {
        this.waiter = resolve;
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    const item = this.items[0]!;
    if (item === END) {
      if (this.error) throw this.error;
      return { done: true, value: undefined };
    }
    this.items.shift();
    this.buffered -= this.sizeOf(item);
    return { done: false, value: item };
  }

  [Symbol.asyncIterator](): AsyncIterator<Chunk, undefined> {
    return { next: () => this.next() };
  }
}

/** An incoming text stream: `for await (const chunk of reader)` or `await reader.readAll()`. */
export class TextStreamReader extends StreamReaderBase<TextStreamInfo, string> {
  protected readonly unit = 'characters';

  protected sizeOf(chunk: string): number {
    return chunk.length;
  }

  protected bytesOf(chunk: string): number {
    return utf8Len(chunk);
  }

  /** The whole text, once the sender closed the stream. */
  async readAll(options: ReadAllOptions = {}): Promise<string> {
    const parts: string[] = [];
    for (;;) {
      const r = await this.next(options.signal);
      if (r.done) return parts.join('');
      parts.push(r.value);
    }
  }
}

export type StreamState = 'open' | 'closing' | 'closed' | 'failed';

/** What writers need from the room. */
export interface WriterTransport {
  send(frame: string | Uint8Array): Promise<void>;
  forgetWriter(streamId: string): void;
}

/** What the sending side (LocalParticipant) needs from the room. */
export interface RoomLink extends WriterTransport {
  /** Throws ConnectionClosed unless connected. */
  ensureConnected(): void;
  /** Throws ConnectionClosed unless connected, PermissionDenied without canPublishData. */
  ensureCanPublish(): void;
  /** Send a frame carrying `req` (built by `build`); resolves on its `ack`, rejects with its
   * `error` (a ServerError) or when the connection is lost. */
  request(build: (req: number) => string): Promise<void>;
  /** Send a numbered data packet (built by `build` from its number right before it is
   * written); resolves on the router's `data_ack` covering it, rejects with a ServerError
   * naming it or when the connection is lost. */
  sendPacket(build: (n: number) => Uint8Array): Promise<void>;
  /** Register `writer` (so the server's answers about it reach it) and send its header. */
  openWriter(writer: StreamWriterBase<BaseStreamInfo>, header: HeaderFrame): Promise<void>;
}

/**
 * What text and byte writers share: the state, the server's verdicts, `close` (resolves once
 * the router routed the stream's end) and the serialisation of writes.
 */
export abstract class StreamWriterBase<Info extends BaseStreamInfo> {
  readonly info: Info;
  protected index = 0;
  protected readonly transport: WriterTransport;
  private stateValue: StreamState = 'open';
  private error: StreamError | undefined;
  private readonly closedFuture: Deferred<void> = deferred<void>();
  private chain: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(transport: WriterTransport, info: Info) {
    this.transport = transport;
    this.info = info;
  }

  get streamId(): string {
    return this.info.id;
  }

  get state(): StreamState {
    return this.stateValue;
  }

  /** @internal the server refused something about this stream */
  _fail(error: ServerError | StreamError): void {
    let err: StreamError;
    if (error instanceof ServerError) {
      err =
        error.code === ErrorCode.SIZE_MISMATCH
          ? new StreamSizeMismatch(error.serverMessage, this.streamId)
          : new StreamAborted(error.serverMessage, { code: error.code, streamId: this.streamId });
    } else {
      err = error;
    }
    this.error = err;
    if (this.stateValue !== 'closed') this.stateValue = 'failed';
    this.closedFuture.reject(err);
  }

  /** @internal the router routed the trailer */
  _routed(): void {
    this.closedFuture.resolve();
  }

  /** Before queueing a write: not failed, not closed (nor being closed). */
  protected check(): void {
    if (this.error) throw this.error;
    if (this.stateValue !== 'open' || this.closing) {
      throw new StreamClosed('the stream is closed; no more writes', this.streamId);
    }
  }

  /** While writing: the server has not refused the stream. */
  protected checkError(): void {
    if (this.error) throw this.error;
  }

  /** Run `fn` after every write and close queued before it. */
  protected serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Close the stream; a non-empty `reason` ends it abnormally at the receivers (their readers
   * throw a StreamAborted with that reason). Resolves once the router has routed the end;
   * rejects if the server refused the stream. Closing twice rejects with StreamClosed (as the
   * Python client and LiveKit do).
   */
  close(reason = '', attributes?: Record<string, string>): Promise<void> {
    if (this.closing) return Promise.reject(new StreamClosed('the stream is already closed', this.streamId));
    if (this.stateValue === 'failed' && this.error) return Promise.reject(this.error);
    let attrs: Record<string, string>;
    try {
      attrs = checkAttributes(attributes);
    } catch (e) {
      return Promise.reject(e);
    }
    this.closing = this.serial(async () => {
      try {
        this.checkError();
        this.stateValue = 'closing';
        await this.transport.send(trailerFrame(this.streamId, String(reason), attrs));
        await this.closedFuture.promise;
      } finally {
        if (this.stateValue === 'closing') this.stateValue = 'closed';
        this.transport.forgetWriter(this.streamId);
      }
    });
    return this.closing;
  }

  /** Close abnormally if still open (used when a body failed); never throws. */
  async abort(reason: string): Promise<void> {
    if (this.stateValue !== 'open' || this.closing) return;
    try {
      await this.close(reason.slice(0, 500));
    } catch {
      // the stream is gone either way
    }
  }
}

/** An outgoing text stream. Close it: receivers' readers end only when it is closed. */
export class TextStreamWriter extends StreamWriterBase<TextStreamInfo> {
  /** Send `text` (chunked at 15000 UTF-8 bytes, never inside a character). Resolves once it is
   * handed to the socket; waits while the path is full (bounded memory). */
  write(text: string): Promise<void> {
    return this._write(text);
  }

  /** @internal `onBytes` is told the UTF-8 bytes of each chunk sent */
  _write(text: string, onBytes?: (n: number) => void): Promise<void> {
    try {
      checkText(text);
      this.check();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      this.checkError();
      const sid = this.streamId;
      for (const piece of splitUtf8(text)) {
        const frame = chunkFrame(sid, this.index, piece);
        this.index += 1;
        await this.transport.send(frame);
        this.checkError();
        onBytes?.(utf8Len(piece));
      }
    });
  }
}
