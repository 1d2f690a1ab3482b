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
 * └── StreamError             something about one stream
 *     ├── StreamClosed        *we* closed it: writing after close()
 *     ├── StreamAborted       the stream ended abnormally (sender left, close reason, lag, ...)
 *     ├── StreamSizeMismatch  total size announced and bytes written disagree
 *     └── UnsafeFileName      a byte stream name that is a path, not a plain file name
 * ```
 */

export class RoomStreamsError extends Error {
  /** A protocol error code (`bad_topic`, `sender_left`, ...) or a short local one. */
  readonly code: string;

  constructor(message: string, code = 'error') {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

export class ConnectError extends RoomStreamsError {
  constructor(message: string, code = 'connect_failed') {
    super(message, code);
  }
}

export class AuthError extends ConnectError {
  /** The HTTP status of the refused handshake, when it is known (not in browsers). */
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message, 'auth_failed');
    this.status = status;
  }
}

export class ConnectionClosed extends RoomStreamsError {
  readonly reason: string;

  constructor(reason = 'connection closed') {
    super(reason, 'connection_closed');
    this.reason = reason;
  }
}

export class PermissionDenied extends RoomStreamsError {
  constructor(message: string) {
    super(message, 'permission_denied');
  }
}

/** Bad input from the caller, refused before anything was sent; `code` is the one the gateway
 * would have answered (`bad_topic`, `data_too_large`, `bad_frame`, ...). */
export class InvalidInput extends RoomStreamsError {}

export class ServerError extends RoomStreamsError {
  readonly serverMessage: string;

  constructor(code: string, message: string) {
    super(`${code}: ${message}`, code);
    this.serverMessage = message;
  }
}

export class StreamError extends RoomStreamsError {
  readonly streamId: string | undefined;

  constructor(message: string, options: { code?: string; streamId?: string } = {}) {
    super(message, options.code ?? 'stream_error');
    this.streamId = options.streamId;
  }
}

export class StreamClosed extends StreamError {
  constructor(message: string, streamId?: string) {
    super(message, { code: 'stream_closed', streamId });
  }
}

export class StreamAborted extends StreamError {
  readonly reason: string;
  readonly sender: string | undefined;

  constructor(
    reason: string,
    options: { code?: string; streamId?: string; sender?: string } = {},
  ) {
    const code = options.code ?? 'aborted';
    super(`stream ended abnormally (${code}): ${reason}`, { code, streamId: options.streamId });
    this.reason = reason;
    this.sender = options.sender;
  }
}

export class StreamSizeMismatch extends StreamError {
  constructor(message: string, streamId?: string) {
    super(message, { code: 'size_mismatch', streamId });
  }
}

export class UnsafeFileName extends StreamError {
  constructor(message: string, streamId?: string) {
    super(message, { code: 'bad_frame', streamId });
  }
}
