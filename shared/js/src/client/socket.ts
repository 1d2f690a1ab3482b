/** The WebSocket under a room: which implementation (the global one, else Node's `ws`
 * package), and the gateway URL. */

import { ConnectError, InvalidInput } from '../exceptions.js';

/** What the client uses of a WebSocket (the browser's, or `ws`'s compatible one). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
  /** Node's `ws` only */
  on?: (event: string, listener: (...args: never[]) => void) => unknown;
  terminate?: () => void;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[], options?: object) => WebSocketLike;

export const WS_OPEN = 1;

let cached: WebSocketCtor | undefined;

/** The global `WebSocket` (browsers, Node >= 22, Deno, Bun), else the `ws` package (Node 20:
 * an optional peer dependency). */
export async function resolveWebSocket(custom?: WebSocketCtor): Promise<{ ctor: WebSocketCtor; node: boolean }> {
  if (custom) return { ctor: custom, node: false };
  const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (typeof g === 'function') return { ctor: g, node: false };
  if (cached) return { ctor: cached, node: true };
  const name = 'ws';
  try {
    const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as {
      WebSocket?: WebSocketCtor;
      default?: WebSocketCtor;
    };
    cached = mod.WebSocket ?? mod.default;
  } catch (e) {
    throw new ConnectError(
      `no WebSocket implementation: this runtime has no global WebSocket; install the "ws" package (npm install ws) (${String(e)})`,
      'no_websocket',
    );
  }
  if (!cached) throw new ConnectError('the "ws" package exports no WebSocket class', 'no_websocket');
  return { ctor: cached, node: true };
}

/** `ws(s)://host:port[/prefix]/rtc?access_token=...`; `http(s)://` URLs become `ws(s)://` as
 * LiveKit does. */
export function rtcUrl(url: string, token: string): string {
  let u = url.trim();
  if (/^http:/i.test(u)) u = `ws:${u.slice(5)}`;
  else if (/^https:/i.test(u)) u = `wss:${u.slice(6)}`;
  if (!/^wss?:\/\/[^/]/i.test(u)) {
    throw new InvalidInput(
      `url must start with ws://, wss://, http:// or https:// (got ${JSON.stringify(url)})`,
      'bad_url',
    );
  }
  const q = u.search(/[?#]/);
  let base = (q >= 0 ? u.slice(0, q) : u).replace(/\/+$/, '');
  if (!base.endsWith('/rtc')) base += '/rtc';
  return `${base}?access_token=${encodeURIComponent(token)}`;
}
