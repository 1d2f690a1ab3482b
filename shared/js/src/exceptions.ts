/**
 * The errors of roomstreams: one root, the same tree as the Python client
 * (`roomstreams/exceptions.py`). Every error has a `code` (the protocol's error code where the
 * server gave one) and a message saying why.
 *
 * ```
 * RoomStreamsError
 * ├── ConnectError            connecting failed (network, refused handshake)
 * │   └── AuthError           the gateway refused the token (its reason is in the message)
 * ├── ConnectionClosed        the room connection is gone; nothing more can be sent
 * ├── PermissionDenied        the token does not allow this (for example canPublishData=false)
 * ├── InvalidInput            bad input refused before anything was sent (e.g. an empty topic)
 * ├── ServerError             the gateway answered a frame with an error (code + message)
 * ├── RpcError                an RPC failed (LiveKit's numeric codes, message and data)
 * └── StreamError             something about one stream
 *     ├── StreamClosed        *we* closed it: writing after close()
 *     ├── StreamAborted       the stream ended abnormally (sender left, close reason, lag, ...)
 *     ├── StreamSizeMismatch  total size announced and bytes written disagree
 *     └── UnsafeFileName      a byte stream name that is a path, not a plain file name
 * ```
 */

export class RoomStreamsError<Code extends string | number = string> extends Error {
  override name = 'RoomStreamsError';
  /** A protocol error code (`bad_topic`, `sender_left`, ...) or a short local one; a number
   * for {@link RpcError} (LiveKit's RPC codes). */
  readonly code: Code;

  constructor(message: string, code: Code = 'error' as Code) {
    super(message);
    this.code = code;
  }
}

export class ConnectError extends RoomStreamsError {
  override name = 'ConnectError';
  constructor(message: string, code = 'connect_failed') {
    super(message, code);
  }
}

export class AuthError extends ConnectError {
  override name = 'AuthError';
  /** The HTTP status of the refused handshake, when it is known (not in browsers). */
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message, 'auth_failed');
    this.status = status;
  }
}

export class ConnectionClosed extends RoomStreamsError {
  override name = 'ConnectionClosed';
  readonly reason: string;

  constructor(reason = 'connection closed') {
    super(reason, 'connection_closed');
    this.reason = reason;
  }
}

export class PermissionDenied extends RoomStreamsError {
  override name = 'PermissionDenied';
  constructor(message: string) {
    super(message, 'permission_denied');
  }
}

/** Bad input from the caller, refused before anything was sent; `code` is the one the gateway
 * would have answered (`bad_topic`, `data_too_large`, `bad_frame`, ...). */
export class InvalidInput extends RoomStreamsError {
  override name = 'InvalidInput';
}

export class ServerError extends RoomStreamsError {
  override name = 'ServerError';
  readonly serverMessage: string;

  constructor(code: string, message: string) {
    super(`${code}: ${message}`, code);
    this.serverMessage = message;
  }
}

export class StreamError extends RoomStreamsError {
  override name = 'StreamError';
  readonly streamId: string | undefined;

  constructor(message: string, options: { code?: string; streamId?: string } = {}) {
    super(message, options.code ?? 'stream_error');
    this.streamId = options.streamId;
  }
}

export class StreamClosed extends StreamError {
  override name = 'StreamClosed';
  constructor(message: string, streamId?: string) {
    super(message, { code: 'stream_closed', streamId });
  }
}

export class StreamAborted extends StreamError {
  override name = 'StreamAborted';
  readonly reason: string;
  readonly sender: string | undefined;

  constructor(reason: string, options: { code?: string; streamId?: string; sender?: string } = {}) {
    const code = options.code ?? 'aborted';
    super(`stream ended abnormally (${code}): ${reason}`, { code, streamId: options.streamId });
    this.reason = reason;
    this.sender = options.sender;
  }
}

export class StreamSizeMismatch extends StreamError {
  override name = 'StreamSizeMismatch';
  constructor(message: string, streamId?: string) {
    super(message, { code: 'size_mismatch', streamId });
  }
}

export class UnsafeFileName extends StreamError {
  override name = 'UnsafeFileName';
  constructor(message: string, streamId?: string) {
    super(message, { code: 'bad_frame', streamId });
  }
}

/** LiveKit's built-in RPC error codes. */
export const RpcErrorCode = {
  APPLICATION_ERROR: 1500,
  CONNECTION_TIMEOUT: 1501,
  RESPONSE_TIMEOUT: 1502,
  RECIPIENT_DISCONNECTED: 1503,
  RESPONSE_PAYLOAD_TOO_LARGE: 1504,
  SEND_FAILED: 1505,
  UNSUPPORTED_METHOD: 1400,
  RECIPIENT_NOT_FOUND: 1401,
  REQUEST_PAYLOAD_TOO_LARGE: 1402,
  UNSUPPORTED_SERVER: 1403,
  UNSUPPORTED_VERSION: 1404,
} as const;

export type RpcErrorName = keyof typeof RpcErrorCode;

const RPC_MESSAGES: Record<RpcErrorName, string> = {
  APPLICATION_ERROR: 'Application error in method handler',
  CONNECTION_TIMEOUT: 'Connection timeout',
  RESPONSE_TIMEOUT: 'Response timeout',
  RECIPIENT_DISCONNECTED: 'Recipient disconnected',
  RESPONSE_PAYLOAD_TOO_LARGE: 'Response payload too large',
  SEND_FAILED: 'Failed to send',
  UNSUPPORTED_METHOD: 'Method not supported at destination',
  RECIPIENT_NOT_FOUND: 'Recipient not found',
  REQUEST_PAYLOAD_TOO_LARGE: 'Request payload too large',
  UNSUPPORTED_SERVER: 'RPC not supported by server',
  UNSUPPORTED_VERSION: 'Unsupported RPC version',
};

/** An RPC failed (livekit-client's `RpcError`): thrown by `performRpc`; throw it in an RPC
 * handler to send its code, message and data to the caller (any other error reaches the caller
 * as 1500, application error). */
export class RpcError extends RoomStreamsError<number> {
  override name = 'RpcError';
  static readonly ErrorCode = RpcErrorCode;
  static readonly ErrorMessage = RPC_MESSAGES;
  readonly data: string | undefined;

  constructor(code: number, message: string, data?: string) {
    super(message, code);
    this.data = data;
  }

  /** A built-in error by name, e.g. `RpcError.builtIn('RESPONSE_TIMEOUT')`. */
  static builtIn(key: RpcErrorName, data?: string): RpcError {
    return new RpcError(RpcErrorCode[key], RPC_MESSAGES[key], data);
  }
}
