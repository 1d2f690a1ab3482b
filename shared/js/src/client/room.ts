/** `Room`: one participant's connection to a room through a gateway (mirror of
 * `roomstreams/client/room.py`, with livekit-client's API). */

import { Incoming, isAbnormal, type IncomingEvent } from '../core/incoming.js';
import {
  AuthError,
  ConnectError,
  ConnectionClosed,
  PermissionDenied,
  RoomStreamsError,
  ServerError,
  StreamAborted,
} from '../exceptions.js';
import { BYTE_CHUNK, decodeByteChunk, isBinary } from '../protocol/binary.js';
import {
  ErrorCode,
  MARK_PREFIX,
  parseServerFrame,
  RESUMED_PREFIX,
  subscribeFrame,
  type DeliveredHeader,
  type ErrorFrame,
  type HeaderFrame,
  type JoinedFrame,
  type ParticipantUpdatedFrame,
  type ServerFrame,
  type StreamKind,
} from '../protocol/frames.js';
import { ByteStreamReader } from './bytestreams.js';
import { checkTopic } from './checks.js';
import { packetFromFrame } from './data.js';
import { ConnectionState, RoomEvent, TypedEmitter, type RoomEventCallbacks } from './events.js';
import { LocalParticipant, permissionsFrom, RemoteParticipant } from './participant.js';
import { Rpcs, type RpcHandler } from './rpc.js';
import { resolveWebSocket, rtcUrl, WS_OPEN, type WebSocketCtor, type WebSocketLike } from './socket.js';
import {
  byteInfoFromHeader,
  DEFAULT_READER_BUFFER,
  textInfoFromHeader,
  TextStreamReader,
  type BaseStreamInfo,
  type RoomLink,
  type StreamReaderBase,
  type StreamWriterBase,
} from './streams.js';
import { deferred, logError, sleep, type Deferred } from './util.js';

/** What a handler is told about the sender (livekit-client's shape). */
export interface ParticipantInfoArg {
  identity: string;
}

export type TextStreamHandler = (reader: TextStreamReader, participantInfo: ParticipantInfoArg) => void | Promise<void>;
export type ByteStreamHandler = (reader: ByteStreamReader, participantInfo: ParticipantInfoArg) => void | Promise<void>;

/** A function giving a fresh access token, called on every (re)connect. */
export type TokenSource = () => string | Promise<string>;

export interface RoomOptions {
  /** A WebSocket class to use instead of the global one (or Node's `ws`). */
  webSocket?: WebSocketCtor;
  /** Reconnect on their own after a lost connection (default true). */
  reconnect?: boolean;
  /** Milliseconds reconnecting keeps trying before it gives up (default 30000). */
  reconnectTimeout?: number;
  /** Text (UTF-16 units) or bytes a reader buffers unread before its stream is ended as
   * `slow_consumer` (default 64 MiB). */
  readerBuffer?: number;
  /** Bytes the socket may hold unsent before writers wait (default 256 KiB): the bound on what
   * a big sendText/sendFile holds in memory beyond the current block. */
  sendBufferBytes?: number;
}

export interface RoomConnectOptions {
  /** Milliseconds to get in the room (socket opened, `joined`, handlers in effect); default 10000. */
  websocketTimeout?: number;
  /** Overrides `RoomOptions.reconnect` for this connection. */
  autoReconnect?: boolean;
}

/** Close codes after which reconnecting would be wrong: removed by the server API (4009), replaced
 * by a newer connection with the same identity (4010), closed for flooding (4029). */
const FINAL_CLOSE_CODES = new Set([4009, 4010, 4029]);
/** Session resume: close code of a refused resume; 4008 (slow consumer) resumes nothing either. */
const CLOSE_RESUME_FAILED = 4011;
const NO_RESUME_CLOSE_CODES = new Set([4008, CLOSE_RESUME_FAILED]);
/** At most this often (ms) the room acknowledges a mark (the gateway's inbox trim waits on it). */
const SEEN_EVERY = 50;

/** The gateway refused to resume our session (it has ended). */
class ResumeRefused extends Error {}

function sameFrame(a: string | Uint8Array, b: string | Uint8Array): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Session resume: the frames received since the last mark, matched in order against what the new
 * gateway replays from it; one found (after the previous one found) was already handled. Exact:
 * frames a gateway makes up itself never equal a routed frame, routed frames come in inbox order. */
class Replay {
  private i = 0;
  constructor(private readonly seen: (string | Uint8Array)[]) {}
  repeat(frame: string | Uint8Array): boolean {
    for (let j = this.i; j < this.seen.length; j++) {
      if (sameFrame(this.seen[j] as string | Uint8Array, frame)) {
        this.i = j + 1;
        return true;
      }
    }
    return false;
  }
}
const RECONNECT_FIRST_DELAY = 100;
const RECONNECT_MAX_DELAY = 2000;
/** How often a writer waiting for the send buffer to drain looks again. */
const DRAIN_POLL_MS = 2;

type Reader = StreamReaderBase<BaseStreamInfo, string> | StreamReaderBase<BaseStreamInfo, Uint8Array>;

/** Numbered data packets (`publishData` with `reliable` true) one room keeps in flight at most:
 * sent, not yet acknowledged by the router; a call beyond it waits for a slot. */
export const PACKET_WINDOW = 256;

export class Room extends TypedEmitter<RoomEventCallbacks> {
  readonly localParticipant: LocalParticipant;
  /** The other participants, by identity. */
  remoteParticipants = new Map<string, RemoteParticipant>();
  /** The room's name (set once connected). */
  name = '';
  readonly options: RoomOptions;

  private stateValue: ConnectionState = ConnectionState.Disconnected;
  private ws: WebSocketLike | undefined;
  private readonly textHandlers = new Map<string, TextStreamHandler>();
  private readonly byteHandlers = new Map<string, ByteStreamHandler>();
  private incoming = new Incoming();
  private readonly readers = new Map<string, Reader>();
  private readonly writers = new Map<string, StreamWriterBase<BaseStreamInfo>>();
  private readonly acks = new Map<number, Deferred<void>>();
  private nextReq = 1;
  /** data-packet acks: numbered packets awaiting the router's data_ack (in number order) */
  private readonly packets = new Map<number, Deferred<void>>();
  private packetNo = 0;
  private readonly packetWaiters: (() => void)[] = [];
  private joined: Deferred<void> | undefined;
  private closeReason = '';
  private url = '';
  private token: string | TokenSource = '';
  private timeout = 10_000;
  private autoReconnect = true;
  private closing = false;
  private reconnecting: Promise<void> | undefined;
  private readonly link: RoomLink;
  private readonly rpc: Rpcs;
  private sid = '';
  // session resume: our session, the gateway's last mark, what came since, the replay filter
  // while resuming, the wait for `resumed`
  private session = '';
  private mark = '';
  private sinceMark: (string | Uint8Array)[] = [];
  private replay: Replay | undefined;
  private resumed: Deferred<void> | undefined;
  private seenSent = 0;

  constructor(options: RoomOptions = {}) {
    super();
    this.options = { ...options };
    const room = this;
    this.link = {
      send: (frame) => room.send(frame),
      forgetWriter: (id) => void room.writers.delete(id),
      ensureConnected: () => room.ensureConnected(),
      ensureCanPublish: () => room.ensureCanPublish(),
      openWriter: (writer, header) => room.openWriter(writer, header),
      request: (build) => room.request(build),
      sendPacket: (build) => room.sendPacket(build),
    };
    this.rpc = new Rpcs({ send: (frame) => room.send(frame), ensureConnected: () => room.ensureConnected() });
    this.localParticipant = new LocalParticipant(this.link, this.rpc);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** LiveKit's room sid (`RM_...`), once connected. */
  async getSid(): Promise<string> {
    return this.sid;
  }

  /** livekit-client's room-level RPC registration (same as the local participant's). */
  registerRpcMethod(method: string, handler: RpcHandler): void {
    this.localParticipant.registerRpcMethod(method, handler);
  }

  unregisterRpcMethod(method: string): void {
    this.localParticipant.unregisterRpcMethod(method);
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit(RoomEvent.ConnectionStateChanged, state);
  }

  // -- connection -----------------------------------------------------------------------------

  /**
   * Connect to a gateway (`ws(s)://host:port`, or `http(s)://`) with an access token (or a
   * function giving one, called on every connect and reconnect). Resolves once the participant
   * is in the room and the handlers registered before are in effect.
   */
  async connect(url: string, token: string | TokenSource, options: RoomConnectOptions = {}): Promise<void> {
    if (this.stateValue !== ConnectionState.Disconnected) {
      throw new ConnectError(`cannot connect: room is ${this.stateValue}`);
    }
    rtcUrl(url, ''); // a bad URL is refused before anything else
    if (typeof token !== 'string' && typeof token !== 'function') {
      throw new ConnectError('token must be a string or a function returning one', 'bad_token');
    }
    this.url = url;
    this.token = token;
    this.timeout = options.websocketTimeout ?? 10_000;
    this.autoReconnect = options.autoReconnect ?? this.options.reconnect ?? true;
    this.closing = false;
    this.setState(ConnectionState.Connecting);
    try {
      await this.open();
    } catch (e) {
      this.failInflight(e instanceof Error ? e.message : String(e));
      this.setState(ConnectionState.Disconnected);
      throw e;
    }
    if (this.closing) {
      // disconnect() was called while connecting
      throw new ConnectionClosed('disconnect() was called while connecting');
    }
    this.setState(ConnectionState.Connected);
    this.emit(RoomEvent.Connected);
  }

  /** Open the socket, wait for `joined` and the acks of registered handlers. */
  private async open(resume = false): Promise<void> {
    const token = typeof this.token === 'function' ? await this.token() : this.token;
    if (typeof token !== 'string') throw new ConnectError('the token source returned no string', 'bad_token');
    // session resume: ask for marks; a resume sends its resume frame first
    let target = rtcUrl(this.url, token);
    if (this.autoReconnect) target += resume ? '&marks=1&resume=1' : '&marks=1';
    const { ctor, node } = await resolveWebSocket(this.options.webSocket);
    this.closeReason = '';
    const joined = deferred<void>();
    const resumed = deferred<void>();
    resumed.promise.catch(() => undefined);
    let resumeFrame = '';
    if (resume) {
      this.resumed = resumed;
      this.replay = new Replay(this.sinceMark);
      resumeFrame = JSON.stringify({
        type: 'resume',
        session: this.session,
        at: this.mark,
        receiving: this.incoming.openIds,
        handlers: [
          ...[...this.textHandlers.keys()].map((t) => ['text', t]),
          ...[...this.byteHandlers.keys()].map((t) => ['byte', t]),
        ],
      });
    } else {
      this.incoming = new Incoming();
      this.session = '';
      this.mark = '';
      this.sinceMark = [];
      this.joined = joined;
    }
    let ws: WebSocketLike;
    try {
      // Node's ws: no compression (the frames are small and the CPU is better spent elsewhere)
      ws = node ? new ctor(target, undefined, { perMessageDeflate: false }) : new ctor(target);
    } catch (e) {
      throw new ConnectError(`could not connect to ${this.url}: ${String(e)}`);
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    const opened = deferred<void>();
    let lastError = '';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ConnectError(`could not connect to ${this.url}: no answer within ${this.timeout} ms`, 'timeout')),
        this.timeout,
      );
    });
    timedOut.catch(() => undefined);
    if (typeof ws.on === 'function') {
      // Node's ws: read why the gateway refused the handshake (browsers never tell)
      ws.on('unexpected-response', ((_req: unknown, res: NodeResponse) => {
        const status = res.statusCode ?? 0;
        const parts: string[] = [];
        res.on('data', (c: { toString(): string }) => parts.push(c.toString()));
        res.on('end', () => {
          const body = parts.join('').trim();
          const msg = `gateway refused the connection (${status}): ${body}`;
          opened.reject(
            status === 401 || status === 403 ? new AuthError(msg, status) : new ConnectError(msg, 'refused'),
          );
          ws.terminate?.();
        });
      }) as never);
    }
    ws.addEventListener('open', (() => opened.resolve()) as never);
    ws.addEventListener('error', ((ev: { message?: string; error?: unknown }) => {
      lastError = ev?.message || (ev?.error ? String(ev.error) : '') || 'WebSocket error';
    }) as never);
    ws.addEventListener('message', ((ev: { data: unknown }) => this.onMessage(ws, ev.data)) as never);
    ws.addEventListener('close', ((ev: { code: number; reason: string; wasClean?: boolean }) => {
      const reason = this.closeReason || ev.reason || (ev.code === 1006 ? 'connection lost' : 'connection closed');
      if (!opened.settled) {
        opened.reject(
          new ConnectError(`could not connect to ${this.url}: ${lastError || reason} (close code ${ev.code})`),
        );
      }
      this.closeReason = this.closeReason || reason;
      this.socketLost(ws, this.closeReason, ev.code);
    }) as never);
    try {
      await Promise.race([opened.promise, timedOut]);
      if (resume) {
        ws.send(resumeFrame);
        await Promise.race([resumed.promise, timedOut]);
        await Promise.race([Promise.all(this.resubscribe()), timedOut]);
      } else {
        const acks = this.resubscribe();
        await Promise.race([joined.promise, timedOut]);
        await Promise.race([Promise.all(acks), timedOut]);
      }
    } catch (e) {
      this.dropSocket(ws);
      if (e instanceof RoomStreamsError || e instanceof ResumeRefused) throw e;
      throw new ConnectError(`could not connect to ${this.url}: ${String(e)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private resubscribe(): Promise<void>[] {
    return [
      ...[...this.textHandlers.keys()].map((t) => this.subscribe('subscribe', t, 'text')),
      ...[...this.byteHandlers.keys()].map((t) => this.subscribe('subscribe', t, 'byte')),
    ];
  }

  /** Leave the room. Open streams end abnormally at their receivers. Idempotent. */
  async disconnect(): Promise<void> {
    this.closing = true;
    const ws = this.ws;
    if (this.stateValue === ConnectionState.Disconnected && !ws) return;
    if (ws) await this.closeSocket(ws, 1000, 'client disconnected');
    this.finish('client disconnected');
    await this.reconnecting?.catch(() => undefined);
  }

  private closeSocket(ws: WebSocketLike, code: number, reason: string): Promise<void> {
    return new Promise<void>((resolve) => {
      if (ws.readyState === 3) return resolve();
      const t = setTimeout(() => {
        ws.terminate?.();
        resolve();
      }, 2000);
      ws.addEventListener('close', (() => {
        clearTimeout(t);
        resolve();
      }) as never);
      try {
        ws.close(code, reason);
      } catch {
        clearTimeout(t);
        resolve();
      }
    });
  }

  /** A socket that failed during open(): forget it and close it. */
  private dropSocket(ws: WebSocketLike): void {
    if (this.ws === ws) this.ws = undefined;
    try {
      if (ws.readyState === 0 && ws.terminate) ws.terminate();
      else ws.close(1000, 'connect failed');
    } catch {
      // already closed
    }
  }

  /** The socket is gone: every open stream here ends, every pending call fails. */
  private failInflight(reason: string): void {
    for (const ev of this.incoming.abortAll(ErrorCode.CONNECTION_LOST, reason)) this.onStreamEvent(ev);
    this.failSending(reason);
  }

  /** The socket is gone: every pending call fails (writers, requests, packets, RPC calls); the
   * streams we receive stay open for a resume (session resume). */
  private failSending(reason: string, refused = false): void {
    for (const w of [...this.writers.values()]) {
      w._fail(new StreamAborted(reason, { code: ErrorCode.CONNECTION_LOST, streamId: w.streamId }));
    }
    this.writers.clear();
    const err = new ConnectionClosed(reason);
    for (const d of this.acks.values()) d.reject(err);
    this.acks.clear();
    if (this.packets.size) {
      const lost = new ConnectionClosed(
        `${reason} (data packet not acknowledged by the router: it may or may not have been delivered)`,
      );
      for (const d of this.packets.values()) d.reject(lost);
      this.packets.clear();
    }
    this.joined?.reject(err);
    this.resumed?.reject(refused ? new ResumeRefused(reason) : err);
    this.rpc.connectionLost(reason);
  }

  /** Final state: disconnected for good (until connect() is called again). */
  private finish(reason: string): void {
    this.failInflight(reason);
    if (this.stateValue === ConnectionState.Disconnected) return;
    const wasUp = this.stateValue === ConnectionState.Connected || this.stateValue === ConnectionState.Reconnecting;
    this.ws = undefined;
    this.remoteParticipants = new Map();
    this.setState(ConnectionState.Disconnected);
    if (wasUp) this.emit(RoomEvent.Disconnected, reason);
  }

  private socketLost(ws: WebSocketLike, reason: string, code: number): void {
    if (ws !== this.ws) return; // an old socket, already replaced
    this.ws = undefined;
    if (this.stateValue === ConnectionState.Reconnecting && !this.closing) {
      // a reconnect attempt's socket: the attempt fails; for a resume, our readers stay
      this.failSending(reason, code === CLOSE_RESUME_FAILED);
      return;
    }
    if (
      this.stateValue !== ConnectionState.Connected ||
      this.closing ||
      !this.autoReconnect ||
      FINAL_CLOSE_CODES.has(code)
    ) {
      this.failInflight(reason);
      if (this.stateValue === ConnectionState.Connected && !this.closing) this.finish(reason);
      return; // else connect()/disconnect() in charge
    }
    // session resume: with a mark, the streams we receive go on after the resume
    const resume = Boolean(this.session && this.mark) && !NO_RESUME_CLOSE_CODES.has(code);
    if (resume) this.failSending(reason);
    else this.failInflight(reason);
    this.setState(ConnectionState.Reconnecting);
    this.emit(RoomEvent.Reconnecting);
    this.reconnecting = this.reconnectLoop(reason, resume).finally(() => {
      this.reconnecting = undefined;
    });
  }

  /** Reconnect with backoff: resume the session (`reconnected`), or, when it has ended (refused),
   * end it (`disconnected`) and join afresh (`connected`); past the timeout, `disconnected`. */
  private async reconnectLoop(reason: string, resume = false): Promise<void> {
    let delay = RECONNECT_FIRST_DELAY;
    const deadline = Date.now() + (this.options.reconnectTimeout ?? 30_000);
    let fresh = false;
    while (Date.now() < deadline) {
      // exponential backoff with jitter: a gateway that died is not stormed by all its clients at once
      await sleep(delay * (0.5 + Math.random() / 2));
      delay = Math.min(delay * 2, RECONNECT_MAX_DELAY);
      if (this.closing) return;
      try {
        await this.open(resume);
      } catch (e) {
        reason = e instanceof Error ? e.message : String(e);
        this.replay = undefined;
        if (e instanceof ResumeRefused) {
          reason = `session ended: ${reason}`;
          resume = false;
          fresh = true;
          delay = RECONNECT_FIRST_DELAY;
          this.finish(reason); // disconnected; then a fresh join
          this.setState(ConnectionState.Connecting);
          continue;
        }
        if (e instanceof AuthError) break;
        if (this.closing) return;
        continue;
      }
      this.replay = undefined;
      if (this.closing) return;
      this.setState(ConnectionState.Connected);
      this.emit(fresh ? RoomEvent.Connected : RoomEvent.Reconnected);
      return;
    }
    if (!this.closing) this.finish(`could not reconnect: ${reason}`);
  }

  private ensureConnected(): void {
    if (this.stateValue !== ConnectionState.Connected || !this.ws) {
      throw new ConnectionClosed(this.closeReason || `room is ${this.stateValue}`);
    }
  }

  private ensureCanPublish(): void {
    this.ensureConnected();
    if (!this.localParticipant.permissions.canPublishData) {
      throw new PermissionDenied('this token does not allow publishing data (canPublishData)');
    }
  }

  /** The one place frames leave: a string goes as a text (JSON) frame, bytes as a binary frame.
   * Waits first while the socket holds more than `sendBufferBytes` unsent (the pacing: the
   * gateway stops reading a sender that is ahead of the router, TCP fills up, and this
   * buffer with it). */
  /** A numbered data packet: waits for a slot of the window (PACKET_WINDOW in flight), sends
   * `build(n)` with the next number (taken right before the write, so numbers follow the
   * socket's order), resolves on the router's `data_ack` covering `n`. */
  private async sendPacket(build: (n: number) => Uint8Array): Promise<void> {
    while (this.packets.size >= PACKET_WINDOW) await new Promise<void>((r) => this.packetWaiters.push(r));
    const d = deferred<void>();
    let n = 0;
    try {
      await this.send(() => {
        n = ++this.packetNo;
        this.packets.set(n, d);
        return build(n);
      });
    } catch (e) {
      if (n) this.packets.delete(n);
      this.packetWaiters.shift()?.();
      throw e;
    }
    try {
      await d.promise;
    } finally {
      this.packetWaiters.shift()?.();
    }
  }

  private packetsAcked(n: number): void {
    for (const [k, d] of this.packets) {
      if (k > n) break;
      this.packets.delete(k);
      d.resolve();
    }
  }

  private packetsFailed(first: number, last: number, err: Error): void {
    for (const [k, d] of [...this.packets]) {
      if (k >= first && k <= last) {
        this.packets.delete(k);
        d.reject(err);
      }
    }
  }

  private async send(frame: string | Uint8Array | (() => string | Uint8Array)): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) throw new ConnectionClosed(this.closeReason || 'not connected');
    const limit = this.options.sendBufferBytes ?? 256 * 1024;
    if (ws.bufferedAmount > limit) {
      let wait = 1;
      while (ws.bufferedAmount > limit) {
        await sleep(wait);
        wait = Math.min(wait * 2, 16 * DRAIN_POLL_MS);
        if (this.ws !== ws || ws.readyState !== WS_OPEN) {
          throw new ConnectionClosed(this.closeReason || 'connection closed');
        }
      }
    }
    try {
      ws.send(typeof frame === 'function' ? frame() : frame);
    } catch (e) {
      throw new ConnectionClosed(this.closeReason || `connection closed: ${String(e)}`);
    }
  }

  private async openWriter(writer: StreamWriterBase<BaseStreamInfo>, header: HeaderFrame): Promise<void> {
    this.writers.set(writer.streamId, writer);
    try {
      await this.send(JSON.stringify(header));
    } catch (e) {
      this.writers.delete(writer.streamId);
      throw e;
    }
  }

  // -- handlers --------------------------------------------------------------------------------

  /**
   * Call `handler(reader, { identity })` for each text stream on `topic`. Throws if the topic
   * already has one. The returned promise resolves once the router has the handler in effect
   * (no need to await it).
   */
  registerTextStreamHandler(topic: string, handler: TextStreamHandler): Promise<void> {
    checkTopic(topic);
    if (this.textHandlers.has(topic)) {
      throw new RoomStreamsError(`a text stream handler for topic "${topic}" is already registered`, 'handler_exists');
    }
    this.textHandlers.set(topic, handler);
    return this.socketOpen() ? this.subscribe('subscribe', topic, 'text') : Promise.resolve();
  }

  unregisterTextStreamHandler(topic: string): Promise<void> {
    if (!this.textHandlers.delete(topic) || !this.socketOpen()) return Promise.resolve();
    return this.subscribe('unsubscribe', topic, 'text');
  }

  /** Same as text handlers, for byte streams; a text and a byte handler on one topic coexist. */
  registerByteStreamHandler(topic: string, handler: ByteStreamHandler): Promise<void> {
    checkTopic(topic);
    if (this.byteHandlers.has(topic)) {
      throw new RoomStreamsError(`a byte stream handler for topic "${topic}" is already registered`, 'handler_exists');
    }
    this.byteHandlers.set(topic, handler);
    return this.socketOpen() ? this.subscribe('subscribe', topic, 'byte') : Promise.resolve();
  }

  unregisterByteStreamHandler(topic: string): Promise<void> {
    if (!this.byteHandlers.delete(topic) || !this.socketOpen()) return Promise.resolve();
    return this.subscribe('unsubscribe', topic, 'byte');
  }

  /** The socket is open (connected, or joining: what is sent now is in effect once joined;
   * a socket still opening gets every handler from `resubscribe`). */
  private socketOpen(): boolean {
    return this.ws !== undefined && this.ws.readyState === WS_OPEN;
  }

  private subscribe(what: 'subscribe' | 'unsubscribe', topic: string, kind: StreamKind): Promise<void> {
    return this.request((req) => subscribeFrame(what, kind, topic, req));
  }

  private request(build: (req: number) => string): Promise<void> {
    const req = this.nextReq++;
    const d = deferred<void>();
    this.acks.set(req, d);
    this.send(build(req)).catch((e: unknown) => {
      this.acks.delete(req);
      d.reject(e);
    });
    return d.promise;
  }

  // -- incoming --------------------------------------------------------------------------------

  private onMessage(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.ws) return;
    try {
      if (typeof data === 'string') {
        // session resume
        if (data.startsWith(MARK_PREFIX)) return this.onMark(data);
        if (data.startsWith(RESUMED_PREFIX)) return this.onResumed(data);
        if (this.mark && !this.firstTime(data)) return;
        let frame: ServerFrame;
        try {
          frame = parseServerFrame(data);
        } catch (e) {
          logError(`undecodable frame from gateway: ${data.slice(0, 200)}`, e);
          return;
        }
        this.onFrame(frame);
      } else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
        const bytes =
          data instanceof ArrayBuffer
            ? new Uint8Array(data)
            : new Uint8Array(
                (data as ArrayBufferView).buffer,
                (data as ArrayBufferView).byteOffset,
                (data as ArrayBufferView).byteLength,
              );
        if (!isBinary(bytes)) this.onMessage(ws, new TextDecoder().decode(bytes));
        else if (!this.mark || this.firstTime(bytes)) this.onBinary(bytes);
      }
    } catch (e) {
      logError('handling a frame from the gateway failed', e);
    }
  }

  // -- session resume --------------------------------------------------------------------------

  /** False for a frame the replay of a resume repeats (already handled). */
  private firstTime(frame: string | Uint8Array): boolean {
    if (this.replay) return !this.replay.repeat(frame);
    this.sinceMark.push(frame);
    return true;
  }

  private onMark(text: string): void {
    const at = (JSON.parse(text) as { at?: unknown }).at;
    if (typeof at !== 'string') return;
    this.mark = at;
    this.sinceMark = [];
    const now = Date.now();
    if (now - this.seenSent >= SEEN_EVERY && this.ws?.readyState === WS_OPEN) {
      this.seenSent = now;
      this.ws.send(JSON.stringify({ type: 'seen', at }));
    }
  }

  private onResumed(text: string): void {
    const f = JSON.parse(text) as { session?: unknown; at?: unknown };
    this.session = String(f.session ?? '');
    this.mark = String(f.at ?? '');
    this.replay = undefined;
    this.sinceMark = [];
    this.resumed?.resolve();
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'chunk':
        return this.onStreamEvents(this.incoming.chunk(frame));
      case 'header':
        return this.onStreamEvents(this.incoming.header(frame));
      case 'trailer':
        return this.onStreamEvents(this.incoming.trailer(frame));
      case 'closed':
        this.writers.get(frame.stream_id)?._routed();
        return;
      case 'ack': {
        const d = this.acks.get(frame.req);
        this.acks.delete(frame.req);
        d?.resolve();
        return;
      }
      case 'data_ack':
        return this.packetsAcked(frame.n);
      case 'error':
        return this.onError(frame);
      case 'joined':
        return this.onJoined(frame);
      case 'participant_joined': {
        const p = new RemoteParticipant(frame.participant);
        this.remoteParticipants.set(p.identity, p);
        this.emit(RoomEvent.ParticipantConnected, p);
        return;
      }
      case 'participant_left': {
        this.rpc.participantLeft(frame.identity);
        const gone = this.remoteParticipants.get(frame.identity);
        if (gone) {
          this.remoteParticipants.delete(frame.identity);
          this.emit(RoomEvent.ParticipantDisconnected, gone);
        }
        return;
      }
      case 'goaway':
        this.closeReason = frame.reason;
        if (frame.code === ErrorCode.RESUME_FAILED) this.resumed?.reject(new ResumeRefused(frame.reason));
        return;
      case 'participant_updated':
        return this.onParticipantUpdated(frame);
      case 'rpc_request':
        return this.rpc.onRequest(frame);
      case 'rpc_ack':
        return this.rpc.onAck(frame);
      case 'rpc_response':
        return this.rpc.onResponse(frame);
    }
  }

  private onBinary(frame: Uint8Array): void {
    if (frame[0] === BYTE_CHUNK) {
      let chunk;
      try {
        chunk = decodeByteChunk(frame);
      } catch (e) {
        logError('undecodable byte chunk from gateway', e);
        return;
      }
      this.onStreamEvents(this.incoming.byteChunk(chunk));
      return;
    }
    let packet;
    try {
      packet = packetFromFrame(frame);
    } catch (e) {
      logError('undecodable data packet from gateway', e);
      return;
    }
    const participant =
      this.remoteParticipants.get(packet.participantIdentity) ??
      new RemoteParticipant({ identity: packet.participantIdentity });
    this.emit(RoomEvent.DataReceived, packet.payload, participant, packet.kind, packet.topic);
  }

  private onJoined(f: JoinedFrame): void {
    const lp = this.localParticipant;
    this.session = f.session; // session resume
    const mine = { name: lp.name, metadata: lp.metadata, attributes: { ...lp.attributes } };
    lp.identity = f.participant.identity;
    lp._apply(f.participant);
    lp.permissions = permissionsFrom(f.permissions);
    this.name = f.room;
    this.sid = f.room_sid;
    const before = this.remoteParticipants;
    this.remoteParticipants = new Map(f.participants.map((p) => [p.identity, new RemoteParticipant(p)]));
    if (this.stateValue === ConnectionState.Reconnecting) {
      this.restoreOwnInfo(mine);
      // whoever came or went while we were away: the same events as if we had seen it
      for (const [id, gone] of before) {
        if (!this.remoteParticipants.has(id)) this.emit(RoomEvent.ParticipantDisconnected, gone);
      }
      for (const [id, came] of this.remoteParticipants) {
        if (!before.has(id)) this.emit(RoomEvent.ParticipantConnected, came);
      }
    }
    this.joined?.resolve();
  }

  /** A reconnect joined with the token's values: set again what this participant had set of
   * itself (the others see it as an update). */
  private restoreOwnInfo(mine: { name: string; metadata: string; attributes: Record<string, string> }): void {
    const lp = this.localParticipant;
    if (!lp.permissions.canUpdateMetadata) return;
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(mine.attributes)) if (lp.attributes[k] !== v) attrs[k] = v;
    for (const k of Object.keys(lp.attributes)) if (!(k in mine.attributes)) attrs[k] = '';
    const update: Record<string, unknown> = {};
    if (mine.name !== lp.name) update['name'] = mine.name;
    if (mine.metadata !== lp.metadata) update['metadata'] = mine.metadata;
    if (Object.keys(attrs).length > 0) update['attributes'] = attrs;
    if (Object.keys(update).length === 0) return;
    lp.name = mine.name;
    lp.metadata = mine.metadata;
    lp.attributes = { ...mine.attributes };
    this.request((req) => JSON.stringify({ type: 'update_participant', req, ...update })).catch((e: unknown) =>
      logError("setting this participant's name, metadata or attributes again after a reconnect failed", e),
    );
  }

  private onParticipantUpdated(f: ParticipantUpdatedFrame): void {
    const info = f.participant;
    const lp = this.localParticipant;
    const p = info.identity === lp.identity ? lp : this.remoteParticipants.get(info.identity);
    if (!p) return;
    const oldName = p.name;
    const oldMetadata = p.metadata;
    p._apply(info);
    if (Object.keys(f.changed_attributes).length > 0) {
      this.emit(RoomEvent.ParticipantAttributesChanged, { ...f.changed_attributes }, p);
    }
    if (p.metadata !== oldMetadata) this.emit(RoomEvent.ParticipantMetadataChanged, oldMetadata, p);
    if (p.name !== oldName) this.emit(RoomEvent.ParticipantNameChanged, p.name, p);
  }

  private onError(f: ErrorFrame): void {
    const err = new ServerError(f.code, f.message);
    if (f.stream_id !== null) {
      const w = this.writers.get(f.stream_id);
      if (w) {
        w._fail(err);
        return;
      }
    }
    if (f.req !== null) {
      const d = this.acks.get(f.req);
      if (d) {
        this.acks.delete(f.req);
        d.reject(err);
        return;
      }
    }
    if (f.packets !== null) {
      // numbered data packets that failed (refused, or lost before routing): their calls reject
      this.packetsFailed(f.packets[0], f.packets[1], err);
      return;
    }
    if (this.listenerCount(RoomEvent.ServerError) === 0) logError(`gateway reported an error: ${err.message}`);
    this.emit(RoomEvent.ServerError, err);
  }

  private onStreamEvents(events: IncomingEvent[]): void {
    for (const ev of events) this.onStreamEvent(ev);
  }

  private onStreamEvent(ev: IncomingEvent): void {
    if (ev.type === 'chunk') {
      const r = this.readers.get(ev.streamId);
      (r as StreamReaderBase<BaseStreamInfo, string | Uint8Array> | undefined)?._feed(ev.content);
    } else if (ev.type === 'opened') {
      this.openReader(ev.header);
    } else {
      const r = this.readers.get(ev.streamId);
      if (!r) return;
      this.readers.delete(ev.streamId);
      if (isAbnormal(ev)) {
        r._end(
          new StreamAborted(ev.reason || ev.code, {
            code: ev.code,
            streamId: ev.streamId,
            sender: r.participantIdentity,
          }),
          ev.attributes,
        );
      } else {
        r._end(undefined, ev.attributes);
      }
    }
  }

  /** A stream starts: hand a reader to the topic's handler of its kind, if any. */
  private openReader(h: DeliveredHeader): void {
    const buffer = this.options.readerBuffer ?? DEFAULT_READER_BUFFER;
    const who = { identity: h.sender };
    let result: unknown;
    try {
      if (h.kind === 'byte') {
        const handler = this.byteHandlers.get(h.topic);
        if (!handler) return;
        const reader = new ByteStreamReader(byteInfoFromHeader(h), h.sender, buffer);
        this.readers.set(h.stream_id, reader);
        result = handler(reader, who);
      } else {
        const handler = this.textHandlers.get(h.topic);
        if (!handler) return;
        const reader = new TextStreamReader(textInfoFromHeader(h), h.sender, buffer);
        this.readers.set(h.stream_id, reader);
        result = handler(reader, who);
      }
    } catch (e) {
      logError(`${h.kind} stream handler for "${h.topic}" threw`, e);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(undefined, (e: unknown) =>
        logError(`${h.kind} stream handler for "${h.topic}" failed`, e),
      );
    }
  }
}

interface NodeResponse {
  statusCode?: number;
  on(event: string, listener: (...args: never[]) => void): unknown;
}
