var __defProp = Object.defineProperty;
var __defNormalProp = (obj2, key, value) => key in obj2 ? __defProp(obj2, key, { enumerable: true, configurable: true, writable: true, value }) : obj2[key] = value;
var __publicField = (obj2, key, value) => __defNormalProp(obj2, typeof key !== "symbol" ? key + "" : key, value);

// src/protocol/frames.ts
var ErrorCode = {
  BAD_JSON: "bad_json",
  BAD_ENCODING: "bad_encoding",
  BAD_FRAME: "bad_frame",
  FRAME_TOO_LARGE: "frame_too_large",
  HEADER_TOO_LARGE: "header_too_large",
  BAD_TOPIC: "bad_topic",
  UNKNOWN_STREAM: "unknown_stream",
  CHUNK_OUT_OF_ORDER: "chunk_out_of_order",
  CHUNK_TOO_LARGE: "chunk_too_large",
  BAD_UTF8: "bad_utf8",
  STREAM_ID_IN_USE: "stream_id_in_use",
  SIZE_MISMATCH: "size_mismatch",
  PERMISSION_DENIED: "permission_denied",
  TOO_MANY_STREAMS: "too_many_streams",
  DATA_TOO_LARGE: "data_too_large",
  UNKNOWN_DESTINATION: "unknown_destination",
  SENDER_LEFT: "sender_left",
  SENDER_REASON: "sender_reason",
  LAGGED: "lagged",
  SLOW_CONSUMER: "slow_consumer",
  DUPLICATE_IDENTITY: "duplicate_identity",
  REMOVED: "removed",
  ROUTER_RESTARTED: "router_restarted",
  OVERLOADED: "overloaded",
  CONNECTION_LOST: "connection_lost",
  INTERNAL_ERROR: "internal_error",
  RATE_LIMITED: "rate_limited",
  TOO_MANY_REQUESTS: "too_many_requests",
  /** session resume refused (window passed, position trimmed, another identity): join afresh */
  RESUME_FAILED: "resume_failed",
  METADATA_TOO_LARGE: "metadata_too_large",
  PAYLOAD_TOO_LARGE: "payload_too_large"
};
function subscribeFrame(what, kind, topic, req) {
  const f = { type: what, kind, topic, req };
  return JSON.stringify(f);
}
function headerFrame(f) {
  return {
    type: "header",
    stream_id: f.stream_id,
    topic: f.topic,
    timestamp: f.timestamp,
    kind: f.kind ?? "text",
    mime_type: f.mime_type ?? "text/plain",
    total_length: f.total_length ?? null,
    attributes: f.attributes ?? {},
    destination_identities: f.destination_identities ?? [],
    operation_type: f.operation_type ?? "create",
    version: f.version ?? 0,
    reply_to_id: f.reply_to_id ?? null,
    attached_stream_ids: f.attached_stream_ids ?? [],
    generated: f.generated ?? false,
    name: f.name ?? null,
    ...f.sender_identity == null ? {} : { sender_identity: f.sender_identity }
  };
}
function chunkFrame(streamId, chunkIndex, content) {
  const f = { type: "chunk", stream_id: streamId, chunk_index: chunkIndex, content };
  return JSON.stringify(f);
}
function trailerFrame(streamId, reason = "", attributes = {}) {
  const f = { type: "trailer", stream_id: streamId, reason, attributes };
  return JSON.stringify(f);
}
var MARK_PREFIX = '{"type":"mark"';
var RESUMED_PREFIX = '{"type":"resumed"';
var BadFrame = class extends Error {
  constructor() {
    super(...arguments);
    __publicField(this, "name", "BadFrame");
  }
};
function fail(what) {
  throw new BadFrame(what);
}
function str(o, key, def) {
  const v = o[key] ?? def;
  if (typeof v !== "string") fail(`field ${key} must be a string`);
  return v;
}
function optStr(o, key) {
  const v = o[key];
  if (v === void 0 || v === null) return null;
  if (typeof v !== "string") fail(`field ${key} must be a string or null`);
  return v;
}
function int(o, key, def) {
  const v = o[key] ?? def;
  if (typeof v !== "number" || !Number.isInteger(v)) fail(`field ${key} must be an integer`);
  return v;
}
function optInt(o, key) {
  const v = o[key];
  if (v === void 0 || v === null) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
    fail(`field ${key} must be a non-negative integer or null`);
  return v;
}
function bool(o, key, def) {
  const v = o[key] ?? def;
  if (typeof v !== "boolean") fail(`field ${key} must be a boolean`);
  return v;
}
function strList(o, key) {
  const v = o[key] ?? [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) fail(`field ${key} must be a list of strings`);
  return v;
}
function strMap(o, key) {
  const v = o[key] ?? {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`field ${key} must be an object`);
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "string") fail(`field ${key}.${k} must be a string`);
    out[k] = x;
  }
  return out;
}
function obj(o, key) {
  const v = o[key];
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`field ${key} must be an object`);
  return v;
}
function permissions(o) {
  return {
    can_publish_data: bool(o, "can_publish_data", true),
    can_subscribe: bool(o, "can_subscribe", true),
    can_update_metadata: bool(o, "can_update_metadata", false),
    hidden: bool(o, "hidden", false)
  };
}
function participantInfo(o) {
  const perm = o["permission"];
  return {
    identity: str(o, "identity"),
    name: str(o, "name", ""),
    metadata: str(o, "metadata", ""),
    attributes: strMap(o, "attributes"),
    sid: str(o, "sid", ""),
    kind: str(o, "kind", "standard"),
    permission: perm === void 0 || perm === null ? null : permissions(obj(o, "permission"))
  };
}
function rpcError(o) {
  const e = o["error"];
  if (e === void 0 || e === null) return void 0;
  const eo = obj(o, "error");
  return { code: int(eo, "code"), message: str(eo, "message"), data: optStr(eo, "data") };
}
function header(o) {
  const kind = str(o, "kind", "text");
  if (kind !== "text" && kind !== "byte") fail(`unknown stream kind ${JSON.stringify(kind)}`);
  const op = str(o, "operation_type", "create");
  if (!["create", "update", "delete", "reaction"].includes(op)) fail(`unknown operation_type ${JSON.stringify(op)}`);
  return {
    ...headerFrame({
      stream_id: str(o, "stream_id"),
      topic: str(o, "topic"),
      timestamp: int(o, "timestamp"),
      kind,
      mime_type: str(o, "mime_type", "text/plain"),
      total_length: optInt(o, "total_length"),
      attributes: strMap(o, "attributes"),
      destination_identities: strList(o, "destination_identities"),
      operation_type: op,
      version: int(o, "version", 0),
      reply_to_id: optStr(o, "reply_to_id"),
      attached_stream_ids: strList(o, "attached_stream_ids"),
      generated: bool(o, "generated", false),
      name: optStr(o, "name")
    }),
    sender: str(o, "sender")
  };
}
function packetRange(o) {
  const p = o["packets"];
  if (p === void 0 || p === null) return null;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isInteger(n))) {
    fail("field packets must be [first, last]");
  }
  return [p[0], p[1]];
}
function parseServerFrame(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BadFrame(`frame is not valid JSON: ${String(e)}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("frame is not a JSON object");
  const o = raw;
  const type = o["type"];
  switch (type) {
    case "joined":
      return {
        type,
        room: str(o, "room"),
        session: str(o, "session"),
        participant: participantInfo(obj(o, "participant")),
        permissions: permissions(obj(o, "permissions")),
        participants: (o["participants"] ?? []).map((p) => {
          if (typeof p !== "object" || p === null) fail("participants must be objects");
          return participantInfo(p);
        }),
        room_sid: str(o, "room_sid", "")
      };
    case "participant_joined":
      return { type, participant: participantInfo(obj(o, "participant")) };
    case "participant_left":
      return { type, identity: str(o, "identity"), reason: str(o, "reason", "") };
    case "ack":
      return { type, req: int(o, "req") };
    case "data_ack":
      return { type, n: int(o, "n") };
    case "header":
      return header(o);
    case "chunk": {
      const index = int(o, "chunk_index");
      if (index < 0) fail("field chunk_index must be non-negative");
      return { type, stream_id: str(o, "stream_id"), chunk_index: index, content: str(o, "content") };
    }
    case "trailer":
      return {
        type,
        stream_id: str(o, "stream_id"),
        reason: str(o, "reason", ""),
        attributes: strMap(o, "attributes"),
        code: str(o, "code", "")
      };
    case "closed":
      return { type, stream_id: str(o, "stream_id") };
    case "error":
      return {
        type,
        code: str(o, "code"),
        message: str(o, "message"),
        stream_id: optStr(o, "stream_id"),
        req: o["req"] === void 0 || o["req"] === null ? null : int(o, "req"),
        packets: packetRange(o)
      };
    case "goaway":
      return { type, code: str(o, "code"), reason: str(o, "reason") };
    case "participant_updated":
      return {
        type,
        participant: participantInfo(obj(o, "participant")),
        changed_attributes: strMap(o, "changed_attributes")
      };
    case "rpc_request":
      return {
        type,
        id: str(o, "id"),
        destination: str(o, "destination", ""),
        method: str(o, "method"),
        payload: str(o, "payload", ""),
        response_timeout_ms: int(o, "response_timeout_ms", 8e3),
        version: int(o, "version", 1),
        caller: str(o, "caller")
      };
    case "rpc_ack":
      return {
        type,
        request_id: str(o, "request_id"),
        destination: str(o, "destination", ""),
        sender: str(o, "sender", "")
      };
    case "rpc_response": {
      const f = {
        type,
        request_id: str(o, "request_id"),
        destination: str(o, "destination", ""),
        sender: str(o, "sender", "")
      };
      const payload = optStr(o, "payload");
      if (payload !== null) f.payload = payload;
      const error = rpcError(o);
      if (error) f.error = error;
      return f;
    }
    default:
      return fail(`unknown or missing frame type: ${JSON.stringify(type)}`);
  }
}

// src/core/incoming.ts
function isAbnormal(ev) {
  return ev.code !== "" || ev.reason !== "";
}
var Incoming = class {
  constructor() {
    __publicField(this, "open", /* @__PURE__ */ new Map());
  }
  get openIds() {
    return [...this.open.keys()];
  }
  header(h) {
    if (this.open.has(h.stream_id)) return [];
    this.open.set(h.stream_id, { header: h, nextIndex: 0 });
    return [{ type: "opened", header: h }];
  }
  chunk(c) {
    return this.chunkOf(c.stream_id, c.chunk_index, c.content, "text");
  }
  byteChunk(c) {
    return this.chunkOf(c.streamId, c.chunkIndex, c.payload, "byte");
  }
  chunkOf(sid, index, content, kind) {
    const st = this.open.get(sid);
    if (st === void 0) return [];
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
    return [{ type: "chunk", streamId: sid, content }];
  }
  trailer(t) {
    const st = this.open.get(t.stream_id);
    if (st === void 0) return [];
    this.open.delete(t.stream_id);
    const attributes = { ...st.header.attributes, ...t.attributes };
    const code = t.code || (t.reason ? ErrorCode.SENDER_REASON : "");
    return [ended(t.stream_id, attributes, code, t.reason)];
  }
  abortAll(code, reason) {
    const events = [];
    for (const [sid, st] of this.open) events.push(ended(sid, { ...st.header.attributes }, code, reason));
    this.open.clear();
    return events;
  }
};
function ended(streamId, attributes, code, reason) {
  return { type: "ended", streamId, attributes, code, reason };
}

// src/exceptions.ts
var RoomStreamsError = class extends Error {
  constructor(message, code = "error") {
    super(message);
    __publicField(this, "name", "RoomStreamsError");
    /** A protocol error code (`bad_topic`, `sender_left`, ...) or a short local one; a number
     * for {@link RpcError} (LiveKit's RPC codes). */
    __publicField(this, "code");
    this.code = code;
  }
};
var ConnectError = class extends RoomStreamsError {
  constructor(message, code = "connect_failed") {
    super(message, code);
    __publicField(this, "name", "ConnectError");
  }
};
var AuthError = class extends ConnectError {
  constructor(message, status) {
    super(message, "auth_failed");
    __publicField(this, "name", "AuthError");
    /** The HTTP status of the refused handshake, when it is known (not in browsers). */
    __publicField(this, "status");
    this.status = status;
  }
};
var ConnectionClosed = class extends RoomStreamsError {
  constructor(reason = "connection closed") {
    super(reason, "connection_closed");
    __publicField(this, "name", "ConnectionClosed");
    __publicField(this, "reason");
    this.reason = reason;
  }
};
var PermissionDenied = class extends RoomStreamsError {
  constructor(message) {
    super(message, "permission_denied");
    __publicField(this, "name", "PermissionDenied");
  }
};
var InvalidInput = class extends RoomStreamsError {
  constructor() {
    super(...arguments);
    __publicField(this, "name", "InvalidInput");
  }
};
var ServerError = class extends RoomStreamsError {
  constructor(code, message) {
    super(`${code}: ${message}`, code);
    __publicField(this, "name", "ServerError");
    __publicField(this, "serverMessage");
    this.serverMessage = message;
  }
};
var StreamError = class extends RoomStreamsError {
  constructor(message, options = {}) {
    super(message, options.code ?? "stream_error");
    __publicField(this, "name", "StreamError");
    __publicField(this, "streamId");
    this.streamId = options.streamId;
  }
};
var StreamClosed = class extends StreamError {
  constructor(message, streamId) {
    super(message, { code: "stream_closed", streamId });
    __publicField(this, "name", "StreamClosed");
  }
};
var StreamAborted = class extends StreamError {
  constructor(reason, options = {}) {
    const code = options.code ?? "aborted";
    super(`stream ended abnormally (${code}): ${reason}`, { code, streamId: options.streamId });
    __publicField(this, "name", "StreamAborted");
    __publicField(this, "reason");
    __publicField(this, "sender");
    this.reason = reason;
    this.sender = options.sender;
  }
};
var StreamSizeMismatch = class extends StreamError {
  constructor(message, streamId) {
    super(message, { code: "size_mismatch", streamId });
    __publicField(this, "name", "StreamSizeMismatch");
  }
};
var UnsafeFileName = class extends StreamError {
  constructor(message, streamId) {
    super(message, { code: "bad_frame", streamId });
    __publicField(this, "name", "UnsafeFileName");
  }
};
var RpcErrorCode = {
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
  UNSUPPORTED_VERSION: 1404
};
var RPC_MESSAGES = {
  APPLICATION_ERROR: "Application error in method handler",
  CONNECTION_TIMEOUT: "Connection timeout",
  RESPONSE_TIMEOUT: "Response timeout",
  RECIPIENT_DISCONNECTED: "Recipient disconnected",
  RESPONSE_PAYLOAD_TOO_LARGE: "Response payload too large",
  SEND_FAILED: "Failed to send",
  UNSUPPORTED_METHOD: "Method not supported at destination",
  RECIPIENT_NOT_FOUND: "Recipient not found",
  REQUEST_PAYLOAD_TOO_LARGE: "Request payload too large",
  UNSUPPORTED_SERVER: "RPC not supported by server",
  UNSUPPORTED_VERSION: "Unsupported RPC version"
};
var _RpcError = class _RpcError extends RoomStreamsError {
  constructor(code, message, data) {
    super(message, code);
    __publicField(this, "name", "RpcError");
    __publicField(this, "data");
    this.data = data;
  }
  /** A built-in error by name, e.g. `RpcError.builtIn('RESPONSE_TIMEOUT')`. */
  static builtIn(key, data) {
    return new _RpcError(RpcErrorCode[key], RPC_MESSAGES[key], data);
  }
};
__publicField(_RpcError, "ErrorCode", RpcErrorCode);
__publicField(_RpcError, "ErrorMessage", RPC_MESSAGES);
var RpcError = _RpcError;

// src/protocol/limits.ts
var MAX_CHUNK_BYTES = 15e3;
var MAX_DATA_BYTES = 15 * 1024;
var MAX_FILE_NAME_BYTES = 255;
var MAX_FRAME_BYTES = 96 * 1024;
var MAX_TOPIC_BYTES = 256;
var MAX_STREAM_ID_BYTES = 128;
var MAX_IDENTITY_BYTES = 256;
var MAX_ATTRIBUTES_BYTES = 8 * 1024;
var MAX_PARTICIPANT_NAME_BYTES = 256;
var MAX_PARTICIPANT_METADATA_BYTES = 64e3;
var MAX_PARTICIPANT_ATTRIBUTES_BYTES = 64e3;
var MAX_RPC_PAYLOAD_BYTES = 15 * 1024;

// src/protocol/binary.ts
var BYTE_CHUNK = 1;
var DATA_PACKET = 2;
var FLAG_RELIABLE = 1;
var FLAG_NUMBERED = 2;
var encoder = new TextEncoder();
var decoder = new TextDecoder("utf-8", { fatal: true });
var BadBinaryFrame = class extends Error {
  constructor() {
    super(...arguments);
    __publicField(this, "name", "BadBinaryFrame");
  }
};
function isBinary(frame) {
  return frame.length > 0 && (frame[0] === BYTE_CHUNK || frame[0] === DATA_PACKET);
}
function encodeByteChunk(streamId, chunkIndex, payload) {
  const sid = encoder.encode(streamId);
  if (sid.length === 0 || sid.length > Math.min(255, MAX_STREAM_ID_BYTES)) {
    throw new RangeError(`stream id must be 1 to ${MAX_STREAM_ID_BYTES} UTF-8 bytes`);
  }
  if (!Number.isInteger(chunkIndex) || chunkIndex < 0 || chunkIndex > 4294967295) {
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
function decodeByteChunk(frame) {
  if (frame.length < 2 || frame[0] !== BYTE_CHUNK) throw new BadBinaryFrame("not a byte chunk frame");
  const n = frame[1];
  const end = 2 + n;
  if (n === 0 || frame.length < end + 4) {
    throw new BadBinaryFrame("byte chunk frame too short for its stream id and chunk index");
  }
  let streamId;
  try {
    streamId = decoder.decode(frame.subarray(2, end));
  } catch {
    throw new BadBinaryFrame("byte chunk stream id is not valid UTF-8");
  }
  const chunkIndex = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(end, false);
  return { streamId, chunkIndex, payload: frame.subarray(end + 4) };
}
function encodeDataPacket(meta, payload, reliable = true, number = 0) {
  if (meta.length > 65535) throw new RangeError("data packet meta longer than 65535 bytes");
  if (number < 0 || number > 4294967295 || !Number.isInteger(number)) {
    throw new RangeError("data packet number out of range");
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
function decodeDataPacket(frame) {
  if (frame.length < 4 || frame[0] !== DATA_PACKET) throw new BadBinaryFrame("data packet frame too short");
  const flags = frame[1];
  if (flags & ~(FLAG_RELIABLE | FLAG_NUMBERED)) {
    throw new BadBinaryFrame(`unknown data packet flags 0x${flags.toString(16).padStart(2, "0")}`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let at = 2;
  let number = 0;
  if (flags & FLAG_NUMBERED) {
    if (frame.length < 8) throw new BadBinaryFrame("data packet frame too short for its number");
    number = view.getUint32(2, false);
    if (number === 0) throw new BadBinaryFrame("data packet number 0 (numbers start at 1)");
    at = 6;
  }
  const n = view.getUint16(at, false);
  const start = at + 2;
  if (frame.length < start + n) throw new BadBinaryFrame("data packet frame too short for its meta");
  return {
    flags,
    reliable: (flags & FLAG_RELIABLE) !== 0,
    meta: frame.subarray(start, start + n),
    payload: frame.subarray(start + n),
    number
  };
}
function parseDeliveredMeta(meta) {
  let obj2;
  try {
    obj2 = JSON.parse(decoder.decode(meta));
  } catch (e) {
    throw new BadBinaryFrame(`data packet meta is not JSON: ${String(e)}`);
  }
  if (typeof obj2 !== "object" || obj2 === null) throw new BadBinaryFrame("data packet meta is not an object");
  const o = obj2;
  const dests = o["destination_identities"] ?? [];
  if (typeof o["sender"] !== "string" || typeof (o["topic"] ?? "") !== "string" || !Array.isArray(dests) || !dests.every((d) => typeof d === "string")) {
    throw new BadBinaryFrame("data packet meta has missing or mistyped fields");
  }
  return { sender: o["sender"], topic: o["topic"] ?? "", destination_identities: dests };
}

// src/protocol/chunking.ts
function unitAt(text, i) {
  const c = text.charCodeAt(i);
  if (c < 128) return [1, 1];
  if (c < 2048) return [2, 1];
  if (c >= 55296 && c <= 56319 && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 56320 && d <= 57343) return [4, 2];
  }
  return [3, 1];
}
function utf8Len(text) {
  let n = 0;
  for (let i = 0; i < text.length; ) {
    const [b, u] = unitAt(text, i);
    n += b;
    i += u;
  }
  return n;
}
function isWellFormed(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 55296 && c <= 56319) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (d < 56320 || d > 57343) return false;
      i++;
    } else if (c >= 56320 && c <= 57343) {
      return false;
    }
  }
  return true;
}
function* splitUtf8(text, maxBytes = MAX_CHUNK_BYTES) {
  if (maxBytes < 4) {
    throw new RangeError("maxBytes must be at least 4 (the longest UTF-8 character)");
  }
  if (text.length * 3 <= maxBytes) {
    if (text) yield text;
    return;
  }
  let start = 0;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const [b, u] = unitAt(text, i);
    if (bytes + b > maxBytes) {
      yield text.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += b;
    i += u;
  }
  if (start < text.length) yield text.slice(start);
}

// src/protocol/filenames.ts
function fileNameProblem(name) {
  if (!name) return "a byte stream needs a non-empty name";
  if (utf8Len(name) > MAX_FILE_NAME_BYTES) return `name longer than ${MAX_FILE_NAME_BYTES} bytes`;
  const shown = JSON.stringify(name);
  if (name.includes("/") || name.includes("\\")) return `name ${shown} contains a path separator`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 32 || c === 127) return `name ${shown} contains a control character`;
  }
  if (name === "." || name === "..") return `name ${shown} is not a file name`;
  if (/^[A-Za-z]:/.test(name)) return `name ${shown} is an absolute path`;
  return void 0;
}

// src/client/checks.ts
function checkTopic(topic) {
  if (topic === void 0 || topic === null) return "";
  if (typeof topic !== "string") throw new InvalidInput("topic must be a string", ErrorCode.BAD_TOPIC);
  const n = utf8Len(topic);
  if (n > MAX_TOPIC_BYTES)
    throw new InvalidInput(`topic of ${n} bytes exceeds ${MAX_TOPIC_BYTES}`, ErrorCode.BAD_TOPIC);
  return topic;
}
function checkDataTopic(topic) {
  if (topic === void 0) return "";
  if (typeof topic !== "string") throw new InvalidInput("topic must be a string", ErrorCode.BAD_TOPIC);
  if (utf8Len(topic) > MAX_TOPIC_BYTES)
    throw new InvalidInput(`topic longer than ${MAX_TOPIC_BYTES} bytes`, ErrorCode.BAD_TOPIC);
  return topic;
}
function checkDestinations(dests) {
  if (dests === void 0 || dests === null) return [];
  if (!Array.isArray(dests))
    throw new InvalidInput("destinationIdentities must be an array of identities", ErrorCode.BAD_FRAME);
  for (const d of dests) {
    if (typeof d !== "string" || d === "" || utf8Len(d) > MAX_IDENTITY_BYTES) {
      throw new InvalidInput("destination identities must be non-empty", ErrorCode.BAD_FRAME);
    }
  }
  return [...dests];
}
function checkAttributes(attributes) {
  if (attributes === void 0 || attributes === null) return {};
  if (typeof attributes !== "object" || Array.isArray(attributes)) {
    throw new InvalidInput("attributes must be an object of strings", ErrorCode.BAD_FRAME);
  }
  const out = {};
  for (const [k, v] of Object.entries(attributes)) {
    if (typeof v !== "string")
      throw new InvalidInput(`attribute ${JSON.stringify(k)} must be a string`, ErrorCode.BAD_FRAME);
    out[k] = v;
  }
  if (utf8Len(JSON.stringify(out)) > MAX_ATTRIBUTES_BYTES)
    throw new InvalidInput("attributes too large", ErrorCode.BAD_FRAME);
  return out;
}
function checkStreamId(id) {
  if (typeof id !== "string" || id === "" || utf8Len(id) > MAX_STREAM_ID_BYTES) {
    throw new InvalidInput(`stream_id must be 1 to ${MAX_STREAM_ID_BYTES} bytes`, ErrorCode.BAD_FRAME);
  }
  return id;
}
function checkText(text, what = "text") {
  if (typeof text !== "string") throw new InvalidInput(`${what} must be a string`, ErrorCode.BAD_FRAME);
  if (!isWellFormed(text)) {
    throw new InvalidInput(
      `${what} is not valid UTF-16: it has a lone surrogate, which UTF-8 cannot carry`,
      ErrorCode.BAD_UTF8
    );
  }
  return text;
}
function checkFileName(name, streamId) {
  const problem = fileNameProblem(typeof name === "string" ? name : void 0);
  if (problem !== void 0) throw new UnsafeFileName(problem, streamId);
  return name;
}
function checkSize(size) {
  if (size === void 0 || size === null) return void 0;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidInput("totalSize must be a non-negative integer", ErrorCode.BAD_FRAME);
  }
  return size;
}

// src/client/util.ts
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => void 0);
  const d = {
    promise,
    settled: false,
    resolve: (v) => {
      if (!d.settled) {
        d.settled = true;
        resolve(v);
      }
    },
    reject: (e) => {
      if (!d.settled) {
        d.settled = true;
        reject(e);
      }
    }
  };
  return d;
}
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
var hex = (b) => b.toString(16).padStart(2, "0");
function randomId() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (typeof c?.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = b[6] & 15 | 64;
  b[8] = b[8] & 63 | 128;
  const h = Array.from(b, hex).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
var utf8 = new TextEncoder();
function logError(message, error) {
  try {
    console.error(`[roomstreams] ${message}`, error ?? "");
  } catch {
  }
}

// src/client/streams.ts
var DEFAULT_READER_BUFFER = 64 * 1024 * 1024;
function textInfoFromHeader(h) {
  const info = {
    id: h.stream_id,
    mimeType: h.mime_type,
    topic: h.topic,
    timestamp: h.timestamp,
    attributes: { ...h.attributes },
    destinationIdentities: [...h.destination_identities],
    operationType: h.operation_type,
    version: h.version,
    attachedStreamIds: [...h.attached_stream_ids],
    generated: h.generated
  };
  if (h.total_length !== null) info.size = h.total_length;
  if (h.reply_to_id !== null) info.replyToId = h.reply_to_id;
  return info;
}
function byteInfoFromHeader(h) {
  const info = {
    id: h.stream_id,
    mimeType: h.mime_type,
    topic: h.topic,
    timestamp: h.timestamp,
    attributes: { ...h.attributes },
    destinationIdentities: [...h.destination_identities],
    name: h.name ?? ""
  };
  if (h.total_length !== null) info.size = h.total_length;
  return info;
}
var END = Symbol("end");
var StreamReaderBase = class {
  constructor(info, sender, maxBuffer) {
    __publicField(this, "info");
    /** the sender's identity */
    __publicField(this, "participantIdentity");
    /** Called as chunks arrive: bytes received / size, undefined while the size is unknown. */
    __publicField(this, "onProgress");
    __publicField(this, "bytesReceived", 0);
    __publicField(this, "items", []);
    __publicField(this, "waiter");
    __publicField(this, "buffered", 0);
    __publicField(this, "maxBuffer");
    __publicField(this, "error");
    __publicField(this, "ended", false);
    this.info = info;
    this.participantIdentity = sender;
    this.maxBuffer = maxBuffer;
  }
  /** True once the stream ended (normally or not). */
  get closed() {
    return this.ended;
  }
  /** @internal fed by the room */
  _feed(content) {
    if (this.ended || content.length === 0) return;
    this.bytesReceived += this.bytesOf(content);
    this.buffered += this.sizeOf(content);
    if (this.buffered > this.maxBuffer) {
      this._end(
        new StreamAborted(`reader buffered more than ${this.maxBuffer} ${this.unit} unread`, {
          code: ErrorCode.SLOW_CONSUMER,
          streamId: this.info.id,
          sender: this.participantIdentity
        })
      );
      return;
    }
    this.items.push(content);
    this.wake();
    if (this.onProgress) {
      const size = this.info.size;
      try {
        this.onProgress(size ? Math.min(this.bytesReceived / size, 1) : void 0);
      } catch {
      }
    }
  }
  /** @internal the stream ended; `error` when abnormally */
  _end(error, attributes) {
    if (this.ended) return;
    this.ended = true;
    if (attributes !== void 0) this.info.attributes = attributes;
    this.error = error;
    if (error?.code === ErrorCode.SLOW_CONSUMER) this.items.length = 0;
    this.items.push(END);
    this.wake();
  }
  wake() {
    const w = this.waiter;
    this.waiter = void 0;
    w?.();
  }
  /** The next chunk; `done` at the end of a normal stream; throws {@link StreamAborted}. */
  async next(signal) {
    while (this.items.length === 0) {
      if (signal?.aborted) throw signal.reason;
      await new Promise((resolve, reject) => {
        this.waiter = resolve;
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    const item = this.items[0];
    if (item === END) {
      if (this.error) throw this.error;
      return { done: true, value: void 0 };
    }
    this.items.shift();
    this.buffered -= this.sizeOf(item);
    return { done: false, value: item };
  }
  [Symbol.asyncIterator]() {
    return { next: () => this.next() };
  }
};
var TextStreamReader = class extends StreamReaderBase {
  constructor() {
    super(...arguments);
    __publicField(this, "unit", "characters");
  }
  sizeOf(chunk) {
    return chunk.length;
  }
  bytesOf(chunk) {
    return utf8Len(chunk);
  }
  /** The whole text, once the sender closed the stream. */
  async readAll(options = {}) {
    const parts = [];
    for (; ; ) {
      const r = await this.next(options.signal);
      if (r.done) return parts.join("");
      parts.push(r.value);
    }
  }
};
var StreamWriterBase = class {
  constructor(transport, info) {
    __publicField(this, "info");
    __publicField(this, "index", 0);
    __publicField(this, "transport");
    __publicField(this, "stateValue", "open");
    __publicField(this, "error");
    __publicField(this, "closedFuture", deferred());
    __publicField(this, "chain", Promise.resolve());
    __publicField(this, "closing");
    this.transport = transport;
    this.info = info;
  }
  get streamId() {
    return this.info.id;
  }
  get state() {
    return this.stateValue;
  }
  /** @internal the server refused something about this stream */
  _fail(error) {
    let err;
    if (error instanceof ServerError) {
      err = error.code === ErrorCode.SIZE_MISMATCH ? new StreamSizeMismatch(error.serverMessage, this.streamId) : new StreamAborted(error.serverMessage, { code: error.code, streamId: this.streamId });
    } else {
      err = error;
    }
    this.error = err;
    if (this.stateValue !== "closed") this.stateValue = "failed";
    this.closedFuture.reject(err);
  }
  /** @internal the router routed the trailer */
  _routed() {
    this.closedFuture.resolve();
  }
  /** Before queueing a write: not failed, not closed (nor being closed). */
  check() {
    if (this.error) throw this.error;
    if (this.stateValue !== "open" || this.closing) {
      throw new StreamClosed("the stream is closed; no more writes", this.streamId);
    }
  }
  /** While writing: the server has not refused the stream. */
  checkError() {
    if (this.error) throw this.error;
  }
  /** Run `fn` after every write and close queued before it. */
  serial(fn) {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => void 0);
    return run;
  }
  /**
   * Close the stream; a non-empty `reason` ends it abnormally at the receivers (their readers
   * throw a StreamAborted with that reason). Resolves once the router has routed the end;
   * rejects if the server refused the stream. Closing twice rejects with StreamClosed (as the
   * Python client and LiveKit do).
   */
  close(reason = "", attributes) {
    if (this.closing) return Promise.reject(new StreamClosed("the stream is already closed", this.streamId));
    if (this.stateValue === "failed" && this.error) return Promise.reject(this.error);
    let attrs;
    try {
      attrs = checkAttributes(attributes);
    } catch (e) {
      return Promise.reject(e);
    }
    this.closing = this.serial(async () => {
      try {
        this.checkError();
        this.stateValue = "closing";
        await this.transport.send(trailerFrame(this.streamId, String(reason), attrs));
        await this.closedFuture.promise;
      } finally {
        if (this.stateValue === "closing") this.stateValue = "closed";
        this.transport.forgetWriter(this.streamId);
      }
    });
    return this.closing;
  }
  /** Close abnormally if still open (used when a body failed); never throws. */
  async abort(reason) {
    if (this.stateValue !== "open" || this.closing) return;
    try {
      await this.close(reason.slice(0, 500));
    } catch {
    }
  }
};
var TextStreamWriter = class extends StreamWriterBase {
  /** Send `text` (chunked at 15000 UTF-8 bytes, never inside a character). Resolves once it is
   * handed to the socket; waits while the path is full (bounded memory). */
  write(text) {
    return this._write(text);
  }
  /** @internal `onBytes` is told the UTF-8 bytes of each chunk sent */
  _write(text, onBytes) {
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
};

// src/client/bytestreams.ts
var DEFAULT_MIME_TYPE = "application/octet-stream";
var FILE_BLOCK = 255e3;
var ByteStreamReader = class extends StreamReaderBase {
  constructor() {
    super(...arguments);
    __publicField(this, "unit", "bytes");
  }
  sizeOf(chunk) {
    return chunk.byteLength;
  }
  bytesOf(chunk) {
    return chunk.byteLength;
  }
  /** Bytes that have arrived so far (read or not). */
  get received() {
    return this.bytesReceived;
  }
  /** Every chunk, once the sender closed the stream (held in memory). */
  async readAll(options = {}) {
    const parts = [];
    for (; ; ) {
      const r = await this.next(options.signal);
      if (r.done) return parts;
      parts.push(r.value);
    }
  }
  /** The whole content as one Blob (typed with the stream's MIME type). */
  async readBlob(options = {}) {
    const parts = await this.readAll(options);
    return new Blob(parts, { type: this.info.mimeType });
  }
};
var ByteStreamWriter = class extends StreamWriterBase {
  /** Send `data` in binary chunks of at most 15000 bytes; waits while the path is full. */
  write(data) {
    return this._write(data);
  }
  /** @internal */
  _write(data, onBytes) {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new InvalidInput("byte stream data must be a Uint8Array", ErrorCode.BAD_FRAME));
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
};
async function openByteStream(room, options) {
  const topic = checkTopic(options?.topic);
  room.ensureCanPublish();
  const id = options.streamId === void 0 ? randomId() : checkStreamId(options.streamId);
  const name = checkFileName(options.name ?? "unknown", id);
  const size = checkSize(options.totalSize);
  const info = {
    id,
    mimeType: options.mimeType || DEFAULT_MIME_TYPE,
    topic,
    timestamp: Date.now(),
    attributes: checkAttributes(options.attributes),
    destinationIdentities: checkDestinations(options.destinationIdentities),
    name
  };
  if (size !== void 0) info.size = size;
  const header2 = headerFrame({
    stream_id: id,
    topic,
    timestamp: info.timestamp,
    kind: "byte",
    mime_type: info.mimeType,
    total_length: size ?? null,
    attributes: info.attributes,
    destination_identities: info.destinationIdentities,
    name
  });
  const writer = new ByteStreamWriter(room, info);
  await room.openWriter(writer, header2);
  return writer;
}
var MIME = {
  txt: "text/plain",
  md: "text/markdown",
  html: "text/html",
  htm: "text/html",
  css: "text/css",
  csv: "text/csv",
  js: "text/javascript",
  json: "application/json",
  xml: "application/xml",
  pdf: "application/pdf",
  zip: "application/zip",
  gz: "application/gzip",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  ogg: "audio/ogg",
  mp4: "video/mp4",
  webm: "video/webm",
  bin: "application/octet-stream"
};
function guessMimeType(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? MIME[name.slice(dot + 1).toLowerCase()] : void 0;
}
async function sendFile(room, file, options) {
  const isBlob = typeof Blob !== "undefined" && file instanceof Blob;
  const bytes = file instanceof ArrayBuffer ? new Uint8Array(file) : file instanceof Uint8Array ? file : void 0;
  if (!isBlob && bytes === void 0) {
    throw new InvalidInput("sendFile takes a File, a Blob, a Uint8Array or an ArrayBuffer", ErrorCode.BAD_FRAME);
  }
  const name = options?.name ?? file.name;
  if (typeof name !== "string" || name === "") {
    throw new InvalidInput("sendFile needs a name: pass a File, or options.name", ErrorCode.BAD_FRAME);
  }
  const blobType = isBlob ? file.type : "";
  const size = isBlob ? file.size : bytes.byteLength;
  const writer = await openByteStream(room, {
    name,
    topic: options.topic,
    mimeType: options.mimeType || blobType || guessMimeType(name) || DEFAULT_MIME_TYPE,
    totalSize: size,
    destinationIdentities: options.destinationIdentities,
    attributes: options.attributes,
    streamId: options.streamId
  });
  let sent = 0;
  const progress = options.onProgress;
  const onBytes = (n) => {
    sent += n;
    if (progress) {
      try {
        progress(size === 0 ? 1 : sent / size);
      } catch {
      }
    }
  };
  try {
    for (let start = 0; start < size; start += FILE_BLOCK) {
      const end = Math.min(start + FILE_BLOCK, size);
      const block = isBlob ? new Uint8Array(await file.slice(start, end).arrayBuffer()) : bytes.subarray(start, end);
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

// src/client/events.ts
var ConnectionState = /* @__PURE__ */ ((ConnectionState2) => {
  ConnectionState2["Disconnected"] = "disconnected";
  ConnectionState2["Connecting"] = "connecting";
  ConnectionState2["Connected"] = "connected";
  ConnectionState2["Reconnecting"] = "reconnecting";
  return ConnectionState2;
})(ConnectionState || {});
var RoomEvent = /* @__PURE__ */ ((RoomEvent2) => {
  RoomEvent2["Connected"] = "connected";
  RoomEvent2["Reconnecting"] = "reconnecting";
  RoomEvent2["Reconnected"] = "reconnected";
  RoomEvent2["Disconnected"] = "disconnected";
  RoomEvent2["ConnectionStateChanged"] = "connectionStateChanged";
  RoomEvent2["ParticipantConnected"] = "participantConnected";
  RoomEvent2["ParticipantDisconnected"] = "participantDisconnected";
  RoomEvent2["DataReceived"] = "dataReceived";
  RoomEvent2["ParticipantAttributesChanged"] = "participantAttributesChanged";
  RoomEvent2["ParticipantMetadataChanged"] = "participantMetadataChanged";
  RoomEvent2["ParticipantNameChanged"] = "participantNameChanged";
  RoomEvent2["ServerError"] = "serverError";
  return RoomEvent2;
})(RoomEvent || {});
var DataPacket_Kind = /* @__PURE__ */ ((DataPacket_Kind2) => {
  DataPacket_Kind2[DataPacket_Kind2["RELIABLE"] = 0] = "RELIABLE";
  DataPacket_Kind2[DataPacket_Kind2["LOSSY"] = 1] = "LOSSY";
  return DataPacket_Kind2;
})(DataPacket_Kind || {});
var TypedEmitter = class {
  constructor() {
    __publicField(this, "listeners", /* @__PURE__ */ new Map());
  }
  on(event, listener) {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }
  once(event, listener) {
    const wrapper = ((...args) => {
      this.off(event, wrapper);
      listener(...args);
    });
    return this.on(event, wrapper);
  }
  off(event, listener) {
    const list = this.listeners.get(event);
    const i = list?.indexOf(listener) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    return this;
  }
  removeAllListeners(event) {
    if (event === void 0) this.listeners.clear();
    else this.listeners.delete(event);
    return this;
  }
  listenerCount(event) {
    return this.listeners.get(event)?.length ?? 0;
  }
  /** Call every listener; one that throws is logged and does not stop the others. */
  emit(event, ...args) {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const fn of [...list]) {
      try {
        const r = fn(...args);
        if (r && typeof r.then === "function") {
          r.then(void 0, (e) => logError(`listener for ${String(event)} failed`, e));
        }
      } catch (e) {
        logError(`listener for ${String(event)} threw`, e);
      }
    }
    return true;
  }
};

// src/client/data.ts
function dataPacketFrame(payload, options = {}, number = 0) {
  let data;
  if (typeof payload === "string") data = utf8.encode(payload);
  else if (payload instanceof Uint8Array) data = payload;
  else throw new InvalidInput("publishData takes a Uint8Array (or a string, sent as UTF-8)", ErrorCode.BAD_FRAME);
  if (data.byteLength > MAX_DATA_BYTES) {
    throw new InvalidInput(
      `data packet of ${data.byteLength} bytes exceeds ${MAX_DATA_BYTES} bytes`,
      ErrorCode.DATA_TOO_LARGE
    );
  }
  const meta = {
    topic: checkDataTopic(options.topic),
    destination_identities: checkDestinations(options.destinationIdentities)
  };
  return encodeDataPacket(utf8.encode(JSON.stringify(meta)), data, options.reliable ?? true, number);
}
function packetFromFrame(frame) {
  const p = decodeDataPacket(frame);
  const meta = parseDeliveredMeta(p.meta);
  return {
    payload: p.payload.slice(),
    participantIdentity: meta.sender,
    topic: meta.topic,
    kind: p.reliable ? 0 /* RELIABLE */ : 1 /* LOSSY */,
    destinationIdentities: meta.destination_identities
  };
}

// src/client/participant.ts
function permissionsFrom(p) {
  return {
    canPublishData: p.can_publish_data,
    canSubscribe: p.can_subscribe,
    canUpdateMetadata: p.can_update_metadata,
    hidden: p.hidden
  };
}
var Participant = class {
  constructor(info) {
    __publicField(this, "identity");
    __publicField(this, "name");
    __publicField(this, "metadata");
    __publicField(this, "attributes");
    /** LiveKit's participant sid (`PA_...`) */
    __publicField(this, "sid");
    /** "standard", "agent", ... (LiveKit's ParticipantKind, as its name) */
    __publicField(this, "kind");
    /** what its token grants, when the server tells */
    __publicField(this, "permissions");
    this.identity = info.identity;
    this.name = info.name ?? "";
    this.metadata = info.metadata ?? "";
    this.attributes = { ...info.attributes ?? {} };
    this.sid = info.sid ?? "";
    this.kind = info.kind ?? "standard";
    this.permissions = info.permission ? permissionsFrom(info.permission) : void 0;
  }
  /** @internal the server's new info about this participant */
  _apply(info) {
    this.name = info.name;
    this.metadata = info.metadata;
    this.attributes = { ...info.attributes };
    if (info.sid) this.sid = info.sid;
    this.kind = info.kind;
    if (info.permission) this.permissions = permissionsFrom(info.permission);
  }
};
var RemoteParticipant = class extends Participant {
};
var LocalParticipant = class extends Participant {
  constructor(room, rpc) {
    super({ identity: "" });
    __publicField(this, "permissions", {
      canPublishData: true,
      canSubscribe: true,
      canUpdateMetadata: false,
      hidden: false
    });
    __publicField(this, "room");
    __publicField(this, "rpc");
    this.room = room;
    this.rpc = rpc;
  }
  // -- name, metadata, attributes ------------------------------------------------------------
  /** Merge `attributes` into this participant's (an empty value deletes a key). Needs the
   * token's `canUpdateOwnMetadata` grant. Resolves once the router applied it: every
   * participant (this one too) gets `ParticipantAttributesChanged`. */
  async setAttributes(attributes) {
    const attrs = {};
    if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes)) {
      throw new InvalidInput("attributes must be an object of strings", ErrorCode.BAD_FRAME);
    }
    for (const [k, v] of Object.entries(attributes)) {
      if (typeof v !== "string")
        throw new InvalidInput(`attribute ${JSON.stringify(k)} must be a string`, ErrorCode.BAD_FRAME);
      attrs[k] = v;
    }
    const merged = { ...this.attributes, ...attrs };
    let n = 0;
    for (const [k, v] of Object.entries(merged)) if (v !== "") n += utf8Len(k) + utf8Len(v);
    if (n > MAX_PARTICIPANT_ATTRIBUTES_BYTES) {
      throw new InvalidInput(
        `attributes of ${n} bytes exceed ${MAX_PARTICIPANT_ATTRIBUTES_BYTES}`,
        ErrorCode.METADATA_TOO_LARGE
      );
    }
    await this.update({ attributes: attrs });
  }
  /** Replace this participant's metadata (`canUpdateOwnMetadata`); everyone gets
   * `ParticipantMetadataChanged`. */
  async setMetadata(metadata) {
    const m = String(metadata);
    if (utf8Len(m) > MAX_PARTICIPANT_METADATA_BYTES) {
      throw new InvalidInput(
        `metadata of ${utf8Len(m)} bytes exceeds ${MAX_PARTICIPANT_METADATA_BYTES}`,
        ErrorCode.METADATA_TOO_LARGE
      );
    }
    await this.update({ metadata: m });
  }
  /** Replace this participant's name (`canUpdateOwnMetadata`); everyone gets
   * `ParticipantNameChanged`. */
  async setName(name) {
    const n = String(name);
    if (utf8Len(n) > MAX_PARTICIPANT_NAME_BYTES) {
      throw new InvalidInput(
        `name of ${utf8Len(n)} bytes exceeds ${MAX_PARTICIPANT_NAME_BYTES}`,
        ErrorCode.METADATA_TOO_LARGE
      );
    }
    await this.update({ name: n });
  }
  async update(fields) {
    this.room.ensureConnected();
    if (!this.permissions.canUpdateMetadata) {
      throw new PermissionDenied("this token does not allow updating its own metadata (canUpdateOwnMetadata)");
    }
    await this.room.request((req) => JSON.stringify({ type: "update_participant", req, ...fields }));
  }
  // -- RPC -----------------------------------------------------------------------------------
  /** Answer RPC calls of `method` with `handler(data)` (its return value is the response
   * payload). A handler may throw an RpcError to answer with it; any other error answers 1500. */
  registerRpcMethod(method, handler) {
    if (this.rpc.handlers.has(method)) {
      throw new InvalidInput(`RPC method "${method}" already registered`, "rpc_method_exists");
    }
    this.rpc.handlers.set(method, handler);
  }
  unregisterRpcMethod(method) {
    this.rpc.handlers.delete(method);
  }
  /** Call `method` at `destinationIdentity` and resolve with its response payload. Rejects with
   * an RpcError (LiveKit's codes): 1401 nobody of that identity in the room, 1503 it left
   * before answering, 1501/1502 the timeouts, 1402 a payload over 15 KiB, or the handler's own. */
  performRpc(params) {
    return this.rpc.perform(params);
  }
  /** Open a text stream. Write to it, then close it: receivers' readers end only then. */
  async streamText(options) {
    return this.openText(options);
  }
  async openText(options, attachments = []) {
    const topic = checkTopic(options?.topic);
    const room = this.room;
    room.ensureCanPublish();
    const id = options.streamId === void 0 ? randomId() : checkStreamId(options.streamId);
    const size = checkSize(options.totalSize);
    const destinations = checkDestinations(options.destinationIdentities);
    const fileIds = attachments.map(() => randomId());
    const info = {
      id,
      mimeType: "text/plain",
      topic,
      timestamp: Date.now(),
      attributes: checkAttributes(options.attributes),
      destinationIdentities: destinations,
      operationType: options.type ?? "create",
      version: options.version ?? 0,
      attachedStreamIds: [...options.attachedStreamIds ?? [], ...fileIds],
      generated: options.generated ?? false
    };
    if (size !== void 0) info.size = size;
    if (options.replyToStreamId !== void 0) info.replyToId = options.replyToStreamId;
    const header2 = headerFrame({
      stream_id: id,
      topic,
      timestamp: info.timestamp,
      total_length: size ?? null,
      attributes: info.attributes,
      destination_identities: destinations,
      operation_type: info.operationType,
      version: info.version,
      reply_to_id: options.replyToStreamId ?? null,
      attached_stream_ids: info.attachedStreamIds,
      generated: info.generated,
      ...options.senderIdentity === void 0 ? {} : { sender_identity: options.senderIdentity }
    });
    const writer = new TextStreamWriter(room, info);
    await room.openWriter(writer, header2);
    try {
      for (let i = 0; i < attachments.length; i++) {
        await sendFile(room, attachments[i], { topic, destinationIdentities: destinations, streamId: fileIds[i] });
      }
    } catch (e) {
      await writer.abort(`attachment failed: ${String(e)}`);
      throw e;
    }
    return writer;
  }
  /** Send a whole text (any size: it is chunked, a bounded amount at a time) as one stream;
   * resolves with its info once the router has routed its end. */
  async sendText(text, options) {
    checkText(text);
    checkTopic(options?.topic);
    const attachments = options.attachments ?? [];
    const textBytes = utf8Len(text);
    const total = textBytes + attachments.reduce((n, f) => n + f.size, 0);
    let sent = 0;
    const progress = options.onProgress;
    const report = (n) => {
      sent += n;
      if (progress) {
        try {
          progress(total === 0 ? 1 : sent / total);
        } catch {
        }
      }
    };
    const writer = await this.openText(
      {
        topic: options.topic,
        destinationIdentities: options.destinationIdentities,
        attributes: options.attributes,
        totalSize: textBytes,
        replyToStreamId: options.replyToStreamId,
        senderIdentity: options.senderIdentity
      },
      attachments
    );
    if (attachments.length > 0) report(total - textBytes);
    try {
      await writer._write(text, report);
      await writer.close();
    } catch (e) {
      await writer.abort(`writer failed: ${String(e)}`);
      throw e;
    }
    if (total === 0) report(0);
    return writer.info;
  }
  /** Open a byte stream. Write Uint8Arrays to it, then close it. */
  async streamBytes(options) {
    return openByteStream(this.room, options);
  }
  /** Send a File/Blob (read a block at a time: memory stays bounded whatever its size), or
   * bytes in memory with `options.name`, as one byte stream. Resolves with its info once the
   * router has routed its end. */
  async sendFile(file, options) {
    return sendFile(this.room, file, options);
  }
  /** Send a data packet (at most 15000 bytes; a string is sent as UTF-8) to every other
   * participant, or to `destinationIdentities`. A reliable one (the default) resolves once the
   * router routed it (its data-packet ack; calls in flight share acks) and rejects with a
   * ServerError or ConnectionClosed saying why it may not arrive; `reliable: false` resolves
   * once it is on the socket (lossy: may be dropped under pressure). */
  async publishData(data, options = {}) {
    const lossy = options.reliable === false;
    const frame = dataPacketFrame(data, options, lossy ? 0 : 1);
    this.room.ensureCanPublish();
    if (lossy) {
      await this.room.send(frame);
      return;
    }
    await this.room.sendPacket((n) => {
      new DataView(frame.buffer, frame.byteOffset, frame.byteLength).setUint32(2, n, false);
      return frame;
    });
  }
};

// src/client/rpc.ts
var RPC_MAX_ROUND_TRIP_MS = 7e3;
var RPC_RESPONSE_TIMEOUT_MS = 15e3;
var RPC_MIN_EFFECTIVE_TIMEOUT_MS = 1e3;
function withTimeout(p, ms, onTimeout) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(ms, 0));
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
var Rpcs = class {
  constructor(link) {
    __publicField(this, "handlers", /* @__PURE__ */ new Map());
    __publicField(this, "calls", /* @__PURE__ */ new Map());
    __publicField(this, "link");
    this.link = link;
  }
  async perform(params) {
    const timeout = params.responseTimeout ?? RPC_RESPONSE_TIMEOUT_MS;
    const payload = params.payload ?? "";
    if (typeof payload !== "string" || utf8Len(payload) > MAX_RPC_PAYLOAD_BYTES) {
      throw RpcError.builtIn("REQUEST_PAYLOAD_TOO_LARGE");
    }
    try {
      this.link.ensureConnected();
    } catch (e) {
      throw RpcError.builtIn("SEND_FAILED", e instanceof Error ? e.message : String(e));
    }
    const id = randomId();
    const budget = Math.max(timeout - RPC_MAX_ROUND_TRIP_MS, RPC_MIN_EFFECTIVE_TIMEOUT_MS);
    const frame = {
      type: "rpc_request",
      id,
      destination: String(params.destinationIdentity),
      method: String(params.method),
      payload,
      response_timeout_ms: Math.floor(budget),
      version: 1
    };
    const call = { destination: frame.destination, acked: deferred(), result: deferred() };
    this.calls.set(id, call);
    const start = Date.now();
    try {
      try {
        await this.link.send(JSON.stringify(frame));
      } catch (e) {
        throw RpcError.builtIn("SEND_FAILED", e instanceof Error ? e.message : String(e));
      }
      await withTimeout(
        call.acked.promise,
        Math.min(RPC_MAX_ROUND_TRIP_MS, timeout),
        () => RpcError.builtIn("CONNECTION_TIMEOUT")
      );
      return await withTimeout(
        call.result.promise,
        timeout - (Date.now() - start),
        () => RpcError.builtIn("RESPONSE_TIMEOUT")
      );
    } finally {
      this.calls.delete(id);
      fail2(call, RpcError.builtIn("SEND_FAILED"));
    }
  }
  onAck(f) {
    this.calls.get(f.request_id)?.acked.resolve();
  }
  onResponse(f) {
    const call = this.calls.get(f.request_id);
    if (!call) return;
    call.acked.resolve();
    if (f.error) call.result.reject(new RpcError(f.error.code, f.error.message, f.error.data ?? void 0));
    else call.result.resolve(f.payload ?? "");
  }
  /** The destination left the room: its calls fail now (1503). */
  participantLeft(identity) {
    for (const call of this.calls.values()) {
      if (call.destination === identity) fail2(call, RpcError.builtIn("RECIPIENT_DISCONNECTED"));
    }
  }
  /** Answers to this connection cannot arrive any more. */
  connectionLost(reason) {
    for (const call of this.calls.values()) fail2(call, RpcError.builtIn("SEND_FAILED", reason));
  }
  onRequest(f) {
    void this.answer(f);
  }
  async answer(f) {
    const ack = { type: "rpc_ack", request_id: f.id, destination: f.caller };
    await this.sendQuietly(JSON.stringify(ack));
    const response = { type: "rpc_response", request_id: f.id, destination: f.caller };
    const handler = this.handlers.get(f.method);
    if (f.version !== 1) {
      response.error = wire(RpcError.builtIn("UNSUPPORTED_VERSION"));
    } else if (!handler) {
      response.error = wire(RpcError.builtIn("UNSUPPORTED_METHOD"));
    } else {
      const data = {
        requestId: f.id,
        callerIdentity: f.caller,
        payload: f.payload,
        responseTimeout: f.response_timeout_ms,
        method: f.method
      };
      try {
        const result = await withTimeout(
          Promise.resolve().then(() => handler(data)),
          f.response_timeout_ms,
          () => RpcError.builtIn("RESPONSE_TIMEOUT")
        );
        const payload = result === void 0 || result === null ? "" : String(result);
        if (utf8Len(payload) > MAX_RPC_PAYLOAD_BYTES)
          response.error = wire(RpcError.builtIn("RESPONSE_PAYLOAD_TOO_LARGE"));
        else response.payload = payload;
      } catch (e) {
        if (e instanceof RpcError) {
          response.error = wire(e);
        } else {
          logError(`RPC handler for "${f.method}" failed; answering 1500`, e);
          response.error = wire(RpcError.builtIn("APPLICATION_ERROR"));
        }
      }
    }
    await this.sendQuietly(JSON.stringify(response));
  }
  async sendQuietly(frame) {
    try {
      await this.link.send(frame);
    } catch (e) {
      if (!(e instanceof ConnectionClosed)) logError("sending an RPC answer failed", e);
    }
  }
};
function fail2(call, err) {
  call.acked.reject(err);
  call.result.reject(err);
}
function wire(e) {
  return e.data === void 0 ? { code: e.code, message: e.message } : { code: e.code, message: e.message, data: e.data };
}

// src/client/socket.ts
var WS_OPEN = 1;
var cached;
async function resolveWebSocket(custom) {
  if (custom) return { ctor: custom, node: false };
  const g = globalThis.WebSocket;
  if (typeof g === "function") return { ctor: g, node: false };
  if (cached) return { ctor: cached, node: true };
  const name = "ws";
  try {
    const mod = await import(
      /* @vite-ignore */
      /* webpackIgnore: true */
      name
    );
    cached = mod.WebSocket ?? mod.default;
  } catch (e) {
    throw new ConnectError(
      `no WebSocket implementation: this runtime has no global WebSocket; install the "ws" package (npm install ws) (${String(e)})`,
      "no_websocket"
    );
  }
  if (!cached) throw new ConnectError('the "ws" package exports no WebSocket class', "no_websocket");
  return { ctor: cached, node: true };
}
function rtcUrl(url, token) {
  let u = url.trim();
  if (/^http:/i.test(u)) u = `ws:${u.slice(5)}`;
  else if (/^https:/i.test(u)) u = `wss:${u.slice(6)}`;
  if (!/^wss?:\/\/[^/]/i.test(u)) {
    throw new InvalidInput(
      `url must start with ws://, wss://, http:// or https:// (got ${JSON.stringify(url)})`,
      "bad_url"
    );
  }
  const q = u.search(/[?#]/);
  let base = (q >= 0 ? u.slice(0, q) : u).replace(/\/+$/, "");
  if (!base.endsWith("/rtc")) base += "/rtc";
  return `${base}?access_token=${encodeURIComponent(token)}`;
}

// src/client/room.ts
var FINAL_CLOSE_CODES = /* @__PURE__ */ new Set([4009, 4010, 4029]);
var CLOSE_RESUME_FAILED = 4011;
var NO_RESUME_CLOSE_CODES = /* @__PURE__ */ new Set([4008, CLOSE_RESUME_FAILED]);
var SEEN_EVERY = 50;
var ResumeRefused = class extends Error {
};
function sameFrame(a, b) {
  if (typeof a === "string" || typeof b === "string") return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
var Replay = class {
  constructor(seen) {
    this.seen = seen;
    __publicField(this, "i", 0);
  }
  repeat(frame) {
    for (let j = this.i; j < this.seen.length; j++) {
      if (sameFrame(this.seen[j], frame)) {
        this.i = j + 1;
        return true;
      }
    }
    return false;
  }
};
var RECONNECT_FIRST_DELAY = 100;
var RECONNECT_MAX_DELAY = 2e3;
var DRAIN_POLL_MS = 2;
var PACKET_WINDOW = 256;
var Room = class extends TypedEmitter {
  constructor(options = {}) {
    super();
    __publicField(this, "localParticipant");
    /** The other participants, by identity. */
    __publicField(this, "remoteParticipants", /* @__PURE__ */ new Map());
    /** The room's name (set once connected). */
    __publicField(this, "name", "");
    __publicField(this, "options");
    __publicField(this, "stateValue", "disconnected" /* Disconnected */);
    __publicField(this, "ws");
    __publicField(this, "textHandlers", /* @__PURE__ */ new Map());
    __publicField(this, "byteHandlers", /* @__PURE__ */ new Map());
    __publicField(this, "incoming", new Incoming());
    __publicField(this, "readers", /* @__PURE__ */ new Map());
    __publicField(this, "writers", /* @__PURE__ */ new Map());
    __publicField(this, "acks", /* @__PURE__ */ new Map());
    __publicField(this, "nextReq", 1);
    /** data-packet acks: numbered packets awaiting the router's data_ack (in number order) */
    __publicField(this, "packets", /* @__PURE__ */ new Map());
    __publicField(this, "packetNo", 0);
    __publicField(this, "packetWaiters", []);
    __publicField(this, "joined");
    __publicField(this, "closeReason", "");
    __publicField(this, "url", "");
    __publicField(this, "token", "");
    __publicField(this, "timeout", 1e4);
    __publicField(this, "autoReconnect", true);
    __publicField(this, "closing", false);
    __publicField(this, "reconnecting");
    __publicField(this, "link");
    __publicField(this, "rpc");
    __publicField(this, "sid", "");
    // session resume: our session, the gateway's last mark, what came since, the replay filter
    // while resuming, the wait for `resumed`
    __publicField(this, "session", "");
    __publicField(this, "mark", "");
    __publicField(this, "sinceMark", []);
    __publicField(this, "replay");
    __publicField(this, "resumed");
    __publicField(this, "seenSent", 0);
    this.options = { ...options };
    const room = this;
    this.link = {
      send: (frame) => room.send(frame),
      forgetWriter: (id) => void room.writers.delete(id),
      ensureConnected: () => room.ensureConnected(),
      ensureCanPublish: () => room.ensureCanPublish(),
      openWriter: (writer, header2) => room.openWriter(writer, header2),
      request: (build) => room.request(build),
      sendPacket: (build) => room.sendPacket(build)
    };
    this.rpc = new Rpcs({ send: (frame) => room.send(frame), ensureConnected: () => room.ensureConnected() });
    this.localParticipant = new LocalParticipant(this.link, this.rpc);
  }
  get state() {
    return this.stateValue;
  }
  /** LiveKit's room sid (`RM_...`), once connected. */
  async getSid() {
    return this.sid;
  }
  /** livekit-client's room-level RPC registration (same as the local participant's). */
  registerRpcMethod(method, handler) {
    this.localParticipant.registerRpcMethod(method, handler);
  }
  unregisterRpcMethod(method) {
    this.localParticipant.unregisterRpcMethod(method);
  }
  setState(state) {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit("connectionStateChanged" /* ConnectionStateChanged */, state);
  }
  // -- connection -----------------------------------------------------------------------------
  /**
   * Connect to a gateway (`ws(s)://host:port`, or `http(s)://`) with an access token (or a
   * function giving one, called on every connect and reconnect). Resolves once the participant
   * is in the room and the handlers registered before are in effect.
   */
  async connect(url, token, options = {}) {
    if (this.stateValue !== "disconnected" /* Disconnected */) {
      throw new ConnectError(`cannot connect: room is ${this.stateValue}`);
    }
    rtcUrl(url, "");
    if (typeof token !== "string" && typeof token !== "function") {
      throw new ConnectError("token must be a string or a function returning one", "bad_token");
    }
    this.url = url;
    this.token = token;
    this.timeout = options.websocketTimeout ?? 1e4;
    this.autoReconnect = options.autoReconnect ?? this.options.reconnect ?? true;
    this.closing = false;
    this.setState("connecting" /* Connecting */);
    try {
      await this.open();
    } catch (e) {
      this.failInflight(e instanceof Error ? e.message : String(e));
      this.setState("disconnected" /* Disconnected */);
      throw e;
    }
    if (this.closing) {
      throw new ConnectionClosed("disconnect() was called while connecting");
    }
    this.setState("connected" /* Connected */);
    this.emit("connected" /* Connected */);
  }
  /** Open the socket, wait for `joined` and the acks of registered handlers. */
  async open(resume = false) {
    const token = typeof this.token === "function" ? await this.token() : this.token;
    if (typeof token !== "string") throw new ConnectError("the token source returned no string", "bad_token");
    let target = rtcUrl(this.url, token);
    if (this.autoReconnect) target += resume ? "&marks=1&resume=1" : "&marks=1";
    const { ctor, node } = await resolveWebSocket(this.options.webSocket);
    this.closeReason = "";
    const joined = deferred();
    const resumed = deferred();
    resumed.promise.catch(() => void 0);
    let resumeFrame = "";
    if (resume) {
      this.resumed = resumed;
      this.replay = new Replay(this.sinceMark);
      resumeFrame = JSON.stringify({
        type: "resume",
        session: this.session,
        at: this.mark,
        receiving: this.incoming.openIds,
        handlers: [
          ...[...this.textHandlers.keys()].map((t) => ["text", t]),
          ...[...this.byteHandlers.keys()].map((t) => ["byte", t])
        ]
      });
    } else {
      this.incoming = new Incoming();
      this.session = "";
      this.mark = "";
      this.sinceMark = [];
      this.joined = joined;
    }
    let ws;
    try {
      ws = node ? new ctor(target, void 0, { perMessageDeflate: false }) : new ctor(target);
    } catch (e) {
      throw new ConnectError(`could not connect to ${this.url}: ${String(e)}`);
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const opened = deferred();
    let lastError = "";
    let timer;
    const timedOut = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new ConnectError(`could not connect to ${this.url}: no answer within ${this.timeout} ms`, "timeout")),
        this.timeout
      );
    });
    timedOut.catch(() => void 0);
    if (typeof ws.on === "function") {
      ws.on("unexpected-response", ((_req, res) => {
        const status = res.statusCode ?? 0;
        const parts = [];
        res.on("data", (c) => parts.push(c.toString()));
        res.on("end", () => {
          const body = parts.join("").trim();
          const msg = `gateway refused the connection (${status}): ${body}`;
          opened.reject(
            status === 401 || status === 403 ? new AuthError(msg, status) : new ConnectError(msg, "refused")
          );
          ws.terminate?.();
        });
      }));
    }
    ws.addEventListener("open", (() => opened.resolve()));
    ws.addEventListener("error", ((ev) => {
      lastError = ev?.message || (ev?.error ? String(ev.error) : "") || "WebSocket error";
    }));
    ws.addEventListener("message", ((ev) => this.onMessage(ws, ev.data)));
    ws.addEventListener("close", ((ev) => {
      const reason = this.closeReason || ev.reason || (ev.code === 1006 ? "connection lost" : "connection closed");
      if (!opened.settled) {
        opened.reject(
          new ConnectError(`could not connect to ${this.url}: ${lastError || reason} (close code ${ev.code})`)
        );
      }
      this.closeReason = this.closeReason || reason;
      this.socketLost(ws, this.closeReason, ev.code);
    }));
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
  resubscribe() {
    return [
      ...[...this.textHandlers.keys()].map((t) => this.subscribe("subscribe", t, "text")),
      ...[...this.byteHandlers.keys()].map((t) => this.subscribe("subscribe", t, "byte"))
    ];
  }
  /** Leave the room. Open streams end abnormally at their receivers. Idempotent. */
  async disconnect() {
    this.closing = true;
    const ws = this.ws;
    if (this.stateValue === "disconnected" /* Disconnected */ && !ws) return;
    if (ws) await this.closeSocket(ws, 1e3, "client disconnected");
    this.finish("client disconnected");
    await this.reconnecting?.catch(() => void 0);
  }
  closeSocket(ws, code, reason) {
    return new Promise((resolve) => {
      if (ws.readyState === 3) return resolve();
      const t = setTimeout(() => {
        ws.terminate?.();
        resolve();
      }, 2e3);
      ws.addEventListener("close", (() => {
        clearTimeout(t);
        resolve();
      }));
      try {
        ws.close(code, reason);
      } catch {
        clearTimeout(t);
        resolve();
      }
    });
  }
  /** A socket that failed during open(): forget it and close it. */
  dropSocket(ws) {
    if (this.ws === ws) this.ws = void 0;
    try {
      if (ws.readyState === 0 && ws.terminate) ws.terminate();
      else ws.close(1e3, "connect failed");
    } catch {
    }
  }
  /** The socket is gone: every open stream here ends, every pending call fails. */
  failInflight(reason) {
    for (const ev of this.incoming.abortAll(ErrorCode.CONNECTION_LOST, reason)) this.onStreamEvent(ev);
    this.failSending(reason);
  }
  /** The socket is gone: every pending call fails (writers, requests, packets, RPC calls); the
   * streams we receive stay open for a resume (session resume). */
  failSending(reason, refused = false) {
    for (const w of [...this.writers.values()]) {
      w._fail(new StreamAborted(reason, { code: ErrorCode.CONNECTION_LOST, streamId: w.streamId }));
    }
    this.writers.clear();
    const err = new ConnectionClosed(reason);
    for (const d of this.acks.values()) d.reject(err);
    this.acks.clear();
    if (this.packets.size) {
      const lost = new ConnectionClosed(
        `${reason} (data packet not acknowledged by the router: it may or may not have been delivered)`
      );
      for (const d of this.packets.values()) d.reject(lost);
      this.packets.clear();
    }
    this.joined?.reject(err);
    this.resumed?.reject(refused ? new ResumeRefused(reason) : err);
    this.rpc.connectionLost(reason);
  }
  /** Final state: disconnected for good (until connect() is called again). */
  finish(reason) {
    this.failInflight(reason);
    if (this.stateValue === "disconnected" /* Disconnected */) return;
    const wasUp = this.stateValue === "connected" /* Connected */ || this.stateValue === "reconnecting" /* Reconnecting */;
    this.ws = void 0;
    this.remoteParticipants = /* @__PURE__ */ new Map();
    this.setState("disconnected" /* Disconnected */);
    if (wasUp) this.emit("disconnected" /* Disconnected */, reason);
  }
  socketLost(ws, reason, code) {
    if (ws !== this.ws) return;
    this.ws = void 0;
    if (this.stateValue === "reconnecting" /* Reconnecting */ && !this.closing) {
      this.failSending(reason, code === CLOSE_RESUME_FAILED);
      return;
    }
    if (this.stateValue !== "connected" /* Connected */ || this.closing || !this.autoReconnect || FINAL_CLOSE_CODES.has(code)) {
      this.failInflight(reason);
      if (this.stateValue === "connected" /* Connected */ && !this.closing) this.finish(reason);
      return;
    }
    const resume = Boolean(this.session && this.mark) && !NO_RESUME_CLOSE_CODES.has(code);
    if (resume) this.failSending(reason);
    else this.failInflight(reason);
    this.setState("reconnecting" /* Reconnecting */);
    this.emit("reconnecting" /* Reconnecting */);
    this.reconnecting = this.reconnectLoop(reason, resume).finally(() => {
      this.reconnecting = void 0;
    });
  }
  /** Reconnect with backoff: resume the session (`reconnected`), or, when it has ended (refused),
   * end it (`disconnected`) and join afresh (`connected`); past the timeout, `disconnected`. */
  async reconnectLoop(reason, resume = false) {
    let delay = RECONNECT_FIRST_DELAY;
    const deadline = Date.now() + (this.options.reconnectTimeout ?? 3e4);
    let fresh = false;
    while (Date.now() < deadline) {
      await sleep(delay * (0.5 + Math.random() / 2));
      delay = Math.min(delay * 2, RECONNECT_MAX_DELAY);
      if (this.closing) return;
      try {
        await this.open(resume);
      } catch (e) {
        reason = e instanceof Error ? e.message : String(e);
        this.replay = void 0;
        if (e instanceof ResumeRefused) {
          reason = `session ended: ${reason}`;
          resume = false;
          fresh = true;
          delay = RECONNECT_FIRST_DELAY;
          this.finish(reason);
          this.setState("connecting" /* Connecting */);
          continue;
        }
        if (e instanceof AuthError) break;
        if (this.closing) return;
        continue;
      }
      this.replay = void 0;
      if (this.closing) return;
      this.setState("connected" /* Connected */);
      this.emit(fresh ? "connected" /* Connected */ : "reconnected" /* Reconnected */);
      return;
    }
    if (!this.closing) this.finish(`could not reconnect: ${reason}`);
  }
  ensureConnected() {
    if (this.stateValue !== "connected" /* Connected */ || !this.ws) {
      throw new ConnectionClosed(this.closeReason || `room is ${this.stateValue}`);
    }
  }
  ensureCanPublish() {
    this.ensureConnected();
    if (!this.localParticipant.permissions.canPublishData) {
      throw new PermissionDenied("this token does not allow publishing data (canPublishData)");
    }
  }
  /** The one place frames leave: a string goes as a text (JSON) frame, bytes as a binary frame.
   * Waits first while the socket holds more than `sendBufferBytes` unsent (the pacing: the
   * gateway stops reading a sender that is ahead of the router, TCP fills up, and this
   * buffer with it). */
  /** A numbered data packet: waits for a slot of the window (PACKET_WINDOW in flight), sends
   * `build(n)` with the next number (taken right before the write, so numbers follow the
   * socket's order), resolves on the router's `data_ack` covering `n`. */
  async sendPacket(build) {
    while (this.packets.size >= PACKET_WINDOW) await new Promise((r) => this.packetWaiters.push(r));
    const d = deferred();
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
  packetsAcked(n) {
    for (const [k, d] of this.packets) {
      if (k > n) break;
      this.packets.delete(k);
      d.resolve();
    }
  }
  packetsFailed(first, last, err) {
    for (const [k, d] of [...this.packets]) {
      if (k >= first && k <= last) {
        this.packets.delete(k);
        d.reject(err);
      }
    }
  }
  async send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) throw new ConnectionClosed(this.closeReason || "not connected");
    const limit = this.options.sendBufferBytes ?? 256 * 1024;
    if (ws.bufferedAmount > limit) {
      let wait = 1;
      while (ws.bufferedAmount > limit) {
        await sleep(wait);
        wait = Math.min(wait * 2, 16 * DRAIN_POLL_MS);
        if (this.ws !== ws || ws.readyState !== WS_OPEN) {
          throw new ConnectionClosed(this.closeReason || "connection closed");
        }
      }
    }
    try {
      ws.send(typeof frame === "function" ? frame() : frame);
    } catch (e) {
      throw new ConnectionClosed(this.closeReason || `connection closed: ${String(e)}`);
    }
  }
  async openWriter(writer, header2) {
    this.writers.set(writer.streamId, writer);
    try {
      await this.send(JSON.stringify(header2));
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
  registerTextStreamHandler(topic, handler) {
    checkTopic(topic);
    if (this.textHandlers.has(topic)) {
      throw new RoomStreamsError(`a text stream handler for topic "${topic}" is already registered`, "handler_exists");
    }
    this.textHandlers.set(topic, handler);
    return this.socketOpen() ? this.subscribe("subscribe", topic, "text") : Promise.resolve();
  }
  unregisterTextStreamHandler(topic) {
    if (!this.textHandlers.delete(topic) || !this.socketOpen()) return Promise.resolve();
    return this.subscribe("unsubscribe", topic, "text");
  }
  /** Same as text handlers, for byte streams; a text and a byte handler on one topic coexist. */
  registerByteStreamHandler(topic, handler) {
    checkTopic(topic);
    if (this.byteHandlers.has(topic)) {
      throw new RoomStreamsError(`a byte stream handler for topic "${topic}" is already registered`, "handler_exists");
    }
    this.byteHandlers.set(topic, handler);
    return this.socketOpen() ? this.subscribe("subscribe", topic, "byte") : Promise.resolve();
  }
  unregisterByteStreamHandler(topic) {
    if (!this.byteHandlers.delete(topic) || !this.socketOpen()) return Promise.resolve();
    return this.subscribe("unsubscribe", topic, "byte");
  }
  /** The socket is open (connected, or joining: what is sent now is in effect once joined;
   * a socket still opening gets every handler from `resubscribe`). */
  socketOpen() {
    return this.ws !== void 0 && this.ws.readyState === WS_OPEN;
  }
  subscribe(what, topic, kind) {
    return this.request((req) => subscribeFrame(what, kind, topic, req));
  }
  request(build) {
    const req = this.nextReq++;
    const d = deferred();
    this.acks.set(req, d);
    this.send(build(req)).catch((e) => {
      this.acks.delete(req);
      d.reject(e);
    });
    return d.promise;
  }
  // -- incoming --------------------------------------------------------------------------------
  onMessage(ws, data) {
    if (ws !== this.ws) return;
    try {
      if (typeof data === "string") {
        if (data.startsWith(MARK_PREFIX)) return this.onMark(data);
        if (data.startsWith(RESUMED_PREFIX)) return this.onResumed(data);
        if (this.mark && !this.firstTime(data)) return;
        let frame;
        try {
          frame = parseServerFrame(data);
        } catch (e) {
          logError(`undecodable frame from gateway: ${data.slice(0, 200)}`, e);
          return;
        }
        this.onFrame(frame);
      } else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(
          data.buffer,
          data.byteOffset,
          data.byteLength
        );
        if (!isBinary(bytes)) this.onMessage(ws, new TextDecoder().decode(bytes));
        else if (!this.mark || this.firstTime(bytes)) this.onBinary(bytes);
      }
    } catch (e) {
      logError("handling a frame from the gateway failed", e);
    }
  }
  // -- session resume --------------------------------------------------------------------------
  /** False for a frame the replay of a resume repeats (already handled). */
  firstTime(frame) {
    if (this.replay) return !this.replay.repeat(frame);
    this.sinceMark.push(frame);
    return true;
  }
  onMark(text) {
    const at = JSON.parse(text).at;
    if (typeof at !== "string") return;
    this.mark = at;
    this.sinceMark = [];
    const now = Date.now();
    if (now - this.seenSent >= SEEN_EVERY && this.ws?.readyState === WS_OPEN) {
      this.seenSent = now;
      this.ws.send(JSON.stringify({ type: "seen", at }));
    }
  }
  onResumed(text) {
    const f = JSON.parse(text);
    this.session = String(f.session ?? "");
    this.mark = String(f.at ?? "");
    this.replay = void 0;
    this.sinceMark = [];
    this.resumed?.resolve();
  }
  onFrame(frame) {
    switch (frame.type) {
      case "chunk":
        return this.onStreamEvents(this.incoming.chunk(frame));
      case "header":
        return this.onStreamEvents(this.incoming.header(frame));
      case "trailer":
        return this.onStreamEvents(this.incoming.trailer(frame));
      case "closed":
        this.writers.get(frame.stream_id)?._routed();
        return;
      case "ack": {
        const d = this.acks.get(frame.req);
        this.acks.delete(frame.req);
        d?.resolve();
        return;
      }
      case "data_ack":
        return this.packetsAcked(frame.n);
      case "error":
        return this.onError(frame);
      case "joined":
        return this.onJoined(frame);
      case "participant_joined": {
        const p = new RemoteParticipant(frame.participant);
        this.remoteParticipants.set(p.identity, p);
        this.emit("participantConnected" /* ParticipantConnected */, p);
        return;
      }
      case "participant_left": {
        this.rpc.participantLeft(frame.identity);
        const gone = this.remoteParticipants.get(frame.identity);
        if (gone) {
          this.remoteParticipants.delete(frame.identity);
          this.emit("participantDisconnected" /* ParticipantDisconnected */, gone);
        }
        return;
      }
      case "goaway":
        this.closeReason = frame.reason;
        if (frame.code === ErrorCode.RESUME_FAILED) this.resumed?.reject(new ResumeRefused(frame.reason));
        return;
      case "participant_updated":
        return this.onParticipantUpdated(frame);
      case "rpc_request":
        return this.rpc.onRequest(frame);
      case "rpc_ack":
        return this.rpc.onAck(frame);
      case "rpc_response":
        return this.rpc.onResponse(frame);
    }
  }
  onBinary(frame) {
    if (frame[0] === BYTE_CHUNK) {
      let chunk;
      try {
        chunk = decodeByteChunk(frame);
      } catch (e) {
        logError("undecodable byte chunk from gateway", e);
        return;
      }
      this.onStreamEvents(this.incoming.byteChunk(chunk));
      return;
    }
    let packet;
    try {
      packet = packetFromFrame(frame);
    } catch (e) {
      logError("undecodable data packet from gateway", e);
      return;
    }
    const participant = this.remoteParticipants.get(packet.participantIdentity) ?? new RemoteParticipant({ identity: packet.participantIdentity });
    this.emit("dataReceived" /* DataReceived */, packet.payload, participant, packet.kind, packet.topic);
  }
  onJoined(f) {
    const lp = this.localParticipant;
    this.session = f.session;
    const mine = { name: lp.name, metadata: lp.metadata, attributes: { ...lp.attributes } };
    lp.identity = f.participant.identity;
    lp._apply(f.participant);
    lp.permissions = permissionsFrom(f.permissions);
    this.name = f.room;
    this.sid = f.room_sid;
    const before = this.remoteParticipants;
    this.remoteParticipants = new Map(f.participants.map((p) => [p.identity, new RemoteParticipant(p)]));
    if (this.stateValue === "reconnecting" /* Reconnecting */) {
      this.restoreOwnInfo(mine);
      for (const [id, gone] of before) {
        if (!this.remoteParticipants.has(id)) this.emit("participantDisconnected" /* ParticipantDisconnected */, gone);
      }
      for (const [id, came] of this.remoteParticipants) {
        if (!before.has(id)) this.emit("participantConnected" /* ParticipantConnected */, came);
      }
    }
    this.joined?.resolve();
  }
  /** A reconnect joined with the token's values: set again what this participant had set of
   * itself (the others see it as an update). */
  restoreOwnInfo(mine) {
    const lp = this.localParticipant;
    if (!lp.permissions.canUpdateMetadata) return;
    const attrs = {};
    for (const [k, v] of Object.entries(mine.attributes)) if (lp.attributes[k] !== v) attrs[k] = v;
    for (const k of Object.keys(lp.attributes)) if (!(k in mine.attributes)) attrs[k] = "";
    const update = {};
    if (mine.name !== lp.name) update["name"] = mine.name;
    if (mine.metadata !== lp.metadata) update["metadata"] = mine.metadata;
    if (Object.keys(attrs).length > 0) update["attributes"] = attrs;
    if (Object.keys(update).length === 0) return;
    lp.name = mine.name;
    lp.metadata = mine.metadata;
    lp.attributes = { ...mine.attributes };
    this.request((req) => JSON.stringify({ type: "update_participant", req, ...update })).catch(
      (e) => logError("setting this participant's name, metadata or attributes again after a reconnect failed", e)
    );
  }
  onParticipantUpdated(f) {
    const info = f.participant;
    const lp = this.localParticipant;
    const p = info.identity === lp.identity ? lp : this.remoteParticipants.get(info.identity);
    if (!p) return;
    const oldName = p.name;
    const oldMetadata = p.metadata;
    p._apply(info);
    if (Object.keys(f.changed_attributes).length > 0) {
      this.emit("participantAttributesChanged" /* ParticipantAttributesChanged */, { ...f.changed_attributes }, p);
    }
    if (p.metadata !== oldMetadata) this.emit("participantMetadataChanged" /* ParticipantMetadataChanged */, oldMetadata, p);
    if (p.name !== oldName) this.emit("participantNameChanged" /* ParticipantNameChanged */, p.name, p);
  }
  onError(f) {
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
      this.packetsFailed(f.packets[0], f.packets[1], err);
      return;
    }
    if (this.listenerCount("serverError" /* ServerError */) === 0) logError(`gateway reported an error: ${err.message}`);
    this.emit("serverError" /* ServerError */, err);
  }
  onStreamEvents(events) {
    for (const ev of events) this.onStreamEvent(ev);
  }
  onStreamEvent(ev) {
    if (ev.type === "chunk") {
      const r = this.readers.get(ev.streamId);
      r?._feed(ev.content);
    } else if (ev.type === "opened") {
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
            sender: r.participantIdentity
          }),
          ev.attributes
        );
      } else {
        r._end(void 0, ev.attributes);
      }
    }
  }
  /** A stream starts: hand a reader to the topic's handler of its kind, if any. */
  openReader(h) {
    const buffer = this.options.readerBuffer ?? DEFAULT_READER_BUFFER;
    const who = { identity: h.sender };
    let result;
    try {
      if (h.kind === "byte") {
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
    if (result && typeof result.then === "function") {
      result.then(
        void 0,
        (e) => logError(`${h.kind} stream handler for "${h.topic}" failed`, e)
      );
    }
  }
};

// src/index.ts
var version = "0.1.0";
export {
  AuthError,
  ByteStreamReader,
  ByteStreamWriter,
  ConnectError,
  ConnectionClosed,
  ConnectionState,
  DataPacket_Kind,
  ErrorCode,
  InvalidInput,
  LocalParticipant,
  MAX_CHUNK_BYTES,
  MAX_DATA_BYTES,
  MAX_RPC_PAYLOAD_BYTES,
  MAX_TOPIC_BYTES,
  Participant,
  PermissionDenied,
  RemoteParticipant,
  Room,
  RoomEvent,
  RoomStreamsError,
  RpcError,
  RpcErrorCode,
  ServerError,
  StreamAborted,
  StreamClosed,
  StreamError,
  StreamReaderBase,
  StreamSizeMismatch,
  StreamWriterBase,
  TextStreamReader,
  TextStreamWriter,
  UnsafeFileName,
  splitUtf8,
  utf8Len,
  version
};
//# sourceMappingURL=roomstreams.js.map
