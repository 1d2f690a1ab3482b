/**
 * RPC between participants, livekit-client's API (mirror of `roomstreams/client/rpc.py`):
 * `registerRpcMethod` / `unregisterRpcMethod` and `performRpc`, handlers getting one
 * {@link RpcInvocationData}.
 *
 * The caller sends `rpc_request`; the recipient answers `rpc_ack` at once and `rpc_response` (a
 * payload or an error) when its handler returns. The router routes them to the destination
 * identity in room-log order, and answers a request for someone not in the room itself (1401).
 * The caller gives up on its own: no ack within 7 s (1501), no response within
 * `responseTimeout` (1502); it fails at once when the recipient leaves (1503).
 */

import { ConnectionClosed, RpcError } from '../exceptions.js';
import { utf8Len } from '../protocol/chunking.js';
import type {
  DeliveredRpcAck,
  DeliveredRpcRequest,
  DeliveredRpcResponse,
  RpcAckFrame,
  RpcRequestFrame,
  RpcResponseFrame,
} from '../protocol/frames.js';
import { MAX_RPC_PAYLOAD_BYTES } from '../protocol/limits.js';
import { deferred, logError, randomId, type Deferred } from './util.js';

/** How long a caller waits for the recipient's ack (LiveKit's maximum round trip), ms. */
export const RPC_MAX_ROUND_TRIP_MS = 7_000;
/** `performRpc`'s default `responseTimeout` (LiveKit's client SDKs), ms. */
export const RPC_RESPONSE_TIMEOUT_MS = 15_000;
/** The least a handler is given (the caller's timeout less the round trip), ms. */
export const RPC_MIN_EFFECTIVE_TIMEOUT_MS = 1_000;

/** What an RPC handler gets (livekit-client's `RpcInvocationData`). */
export interface RpcInvocationData {
  requestId: string;
  callerIdentity: string;
  payload: string;
  /** milliseconds the caller waits for the answer (less the round trip) */
  responseTimeout: number;
  method: string;
}

export type RpcHandler = (data: RpcInvocationData) => Promise<string> | string | void | Promise<void>;

export interface PerformRpcParams {
  destinationIdentity: string;
  method: string;
  payload: string;
  /** milliseconds to wait for the response (default 15000) */
  responseTimeout?: number;
}

interface Call {
  destination: string;
  acked: Deferred<void>;
  result: Deferred<string>;
}

/** What RPC needs from the room. */
export interface RpcLink {
  send(frame: string): Promise<void>;
  ensureConnected(): void;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(ms, 0));
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** This participant's RPC methods and calls in flight (the room feeds it the RPC frames and
 * the departures). */
export class Rpcs {
  readonly handlers = new Map<string, RpcHandler>();
  private readonly calls = new Map<string, Call>();
  private readonly link: RpcLink;

  constructor(link: RpcLink) {
    this.link = link;
  }

  async perform(params: PerformRpcParams): Promise<string> {
    const timeout = params.responseTimeout ?? RPC_RESPONSE_TIMEOUT_MS;
    const payload = params.payload ?? '';
    if (typeof payload !== 'string' || utf8Len(payload) > MAX_RPC_PAYLOAD_BYTES) {
      throw RpcError.builtIn('REQUEST_PAYLOAD_TOO_LARGE');
    }
    try {
      this.link.ensureConnected();
    } catch (e) {
      throw RpcError.builtIn('SEND_FAILED', e instanceof Error ? e.message : String(e));
    }
    const id = randomId();
    const budget = Math.max(timeout - RPC_MAX_ROUND_TRIP_MS, RPC_MIN_EFFECTIVE_TIMEOUT_MS);
    const frame: RpcRequestFrame = {
      type: 'rpc_request',
      id,
      destination: String(params.destinationIdentity),
      method: String(params.method),
      payload,
      response_timeout_ms: Math.floor(budget),
      version: 1,
    };
    const call: Call = { destination: frame.destination, acked: deferred(), result: deferred() };
    this.calls.set(id, call);
    const start = Date.now();
    try {
      try {
        await this.link.send(JSON.stringify(frame));
      } catch (e) {
        throw RpcError.builtIn('SEND_FAILED', e instanceof Error ? e.message : String(e));
      }
      await withTimeout(call.acked.promise, Math.min(RPC_MAX_ROUND_TRIP_MS, timeout), () =>
        RpcError.builtIn('CONNECTION_TIMEOUT'),
      );
      return await withTimeout(call.result.promise, timeout - (Date.now() - start), () =>
        RpcError.builtIn('RESPONSE_TIMEOUT'),
      );
    } finally {
      this.calls.delete(id);
      fail(call, RpcError.builtIn('SEND_FAILED')); // nothing left waiting
    }
  }

  onAck(f: DeliveredRpcAck): void {
    this.calls.get(f.request_id)?.acked.resolve();
  }

  onResponse(f: DeliveredRpcResponse): void {
    const call = this.calls.get(f.request_id);
    if (!call) return; // it timed out here already
    call.acked.resolve(); // the router answers for a missing recipient: no ack
    if (f.error) call.result.reject(new RpcError(f.error.code, f.error.message, f.error.data ?? undefined));
    else call.result.resolve(f.payload ?? '');
  }

  /** The destination left the room: its calls fail now (1503). */
  participantLeft(identity: string): void {
    for (const call of this.calls.values()) {
      if (call.destination === identity) fail(call, RpcError.builtIn('RECIPIENT_DISCONNECTED'));
    }
  }

  /** Answers to this connection cannot arrive any more. */
  connectionLost(reason: string): void {
    for (const call of this.calls.values()) fail(call, RpcError.builtIn('SEND_FAILED', reason));
  }

  onRequest(f: DeliveredRpcRequest): void {
    void this.answer(f);
  }

  private async answer(f: DeliveredRpcRequest): Promise<void> {
    const ack: RpcAckFrame = { type: 'rpc_ack', request_id: f.id, destination: f.caller };
    await this.sendQuietly(JSON.stringify(ack));
    const response: RpcResponseFrame = { type: 'rpc_response', request_id: f.id, destination: f.caller };
    const handler = this.handlers.get(f.method);
    if (f.version !== 1) {
      response.error = wire(RpcError.builtIn('UNSUPPORTED_VERSION'));
    } else if (!handler) {
      response.error = wire(RpcError.builtIn('UNSUPPORTED_METHOD'));
    } else {
      const data: RpcInvocationData = {
        requestId: f.id,
        callerIdentity: f.caller,
        payload: f.payload,
        responseTimeout: f.response_timeout_ms,
        method: f.method,
      };
      try {
        const result = await withTimeout(
          Promise.resolve().then(() => handler(data)),
          f.response_timeout_ms,
          () => RpcError.builtIn('RESPONSE_TIMEOUT'),
        );
        const payload = result === undefined || result === null ? '' : String(result);
        if (utf8Len(payload) > MAX_RPC_PAYLOAD_BYTES)
          response.error = wire(RpcError.builtIn('RESPONSE_PAYLOAD_TOO_LARGE'));
        else response.payload = payload;
      } catch (e) {
        if (e instanceof RpcError) {
          response.error = wire(e);
        } else {
          logError(`RPC handler for "${f.method}" failed; answering 1500`, e);
          response.error = wire(RpcError.builtIn('APPLICATION_ERROR'));
        }
      }
    }
    await this.sendQuietly(JSON.stringify(response));
  }

  private async sendQuietly(frame: string): Promise<void> {
    try {
      await this.link.send(frame);
    } catch (e) {
      if (!(e instanceof ConnectionClosed)) logError('sending an RPC answer failed', e);
    }
  }
}

function fail(call: Call, err: RpcError): void {
  call.acked.reject(err);
  call.result.reject(err);
}

function wire(e: RpcError): { code: number; message: string; data?: string } {
  return e.data === undefined
    ? { code: e.code, message: e.message }
    : { code: e.code, message: e.message, data: e.data };
}
