/**
 * JSON WebSocket frames between a participant and a gateway (mirror of
 * `roomstreams/protocol/frames.py`): one JSON text frame each, discriminated by `type`. Field
 * names are the wire's (snake_case, LiveKit's `DataStream.Header/Chunk/Trailer` names); the
 * gateway validates client frames strictly (no unknown fields), so the encoders below write
 * exactly the Python models' fields.
 *
 * Client -> gateway: `subscribe`, `unsubscribe`, `header`, `chunk`, `trailer`,
 * `update_participant`, `rpc_request`, `rpc_ack`, `rpc_response`.
 * Gateway -> client: `joined`, `participant_joined`, `participant_left`, `participant_updated`,
 * `ack`, `header` (with `sender`), `chunk`, `trailer` (with `code` when the system ended the
 * stream), `closed` (the sender's trailer was routed), `error`, `goaway`, and the RPC frames
 * with the caller (`caller`) or the answerer (`sender`) stamped by the gateway.
 */

export type StreamKind = 'text' | 'byte';
export type OperationType = 'create' | 'update' | 'delete' | 'reaction';

/** The codes of `error` frames and of abnormal `trailer` frames. */
export const ErrorCode = {
  BAD_JSON: 'bad_json',
  BAD_ENCODING: 'bad_encoding',
  BAD_FRAME: 'bad_frame',
  FRAME_TOO_LARGE: 'frame_too_large',
  HEADER_TOO_LARGE: 'header_too_large',
  BAD_TOPIC: 'bad_topic',
  UNKNOWN_STREAM: 'unknown_stream',
  CHUNK_OUT_OF_ORDER: 'chunk_out_of_order',
  CHUNK_TOO_LARGE: 'chunk_too_large',
  BAD_UTF8: 'bad_utf8',
  STREAM_ID_IN_USE: 'stream_id_in_use',
  SIZE_MISMATCH: 'size_mismatch',
  PERMISSION_DENIED: 'permission_denied',
  TOO_MANY_STREAMS: 'too_many_streams',
  DATA_TOO_LARGE: 'data_too_large',
  UNKNOWN_DESTINATION: 'unknown_destination',
  SENDER_LEFT: 'sender_left',
  SENDER_REASON: 'sender_reason',
  LAGGED: 'lagged',
  SLOW_CONSUMER: 'slow_consumer',
  DUPLICATE_IDENTITY: 'duplicate_identity',
  REMOVED: 'removed',
  ROUTER_RESTARTED: 'router_restarted',
  OVERLOADED: 'overloaded',
  CONNECTION_LOST: 'connection_lost',
  INTERNAL_ERROR: 'internal_error',
  RATE_LIMITED: 'rate_limited',
  TOO_MANY_REQUESTS: 'too_many_requests',
  /** session resume refused (window passed, position trimmed, another identity): join afresh */
  RESUME_FAILED: 'resume_failed',
  METADATA_TOO_LARGE: 'metadata_too_large',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
} as const;

// ---- client -> gateway -------------------------------------------------------------------

export interface SubscribeFrame {
  type: 'subscribe' | 'unsubscribe';
  kind: StreamKind;
  topic: string;
  req: number;
}

export interface HeaderFrame {
  type: 'header';
  stream_id: string;
  topic: string;
  timestamp: number;
  kind: StreamKind;
  mime_type: string;
  total_length: number | null;
  attributes: Record<string, string>;
  destination_identities: string[];
  operation_type: OperationType;
  version: number;
  reply_to_id: string | null;
  attached_stream_ids: string[];
  generated: boolean;
  name: string | null;
  /** LiveKit's `sender_identity`: an agent speaking for another participant (agents only) */
  sender_identity?: string | null;
}

export interface ChunkFrame {
  type: 'chunk';
  stream_id: string;
  chunk_index: number;
  content: string;
}

export interface TrailerFrame {
  type: 'trailer';
  stream_id: string;
  reason: string;
  attributes: Record<string, string>;
}

export function subscribeFrame(
  what: 'subscribe' | 'unsubscribe',
  kind: StreamKind,
  topic: string,
  req: number,
): string {
  const f: SubscribeFrame = { type: what, kind, topic, req };
  return JSON.stringify(f);
}

export type HeaderFields = Pick<HeaderFrame, 'stream_id' | 'topic' | 'timestamp'> &
  Partial<Omit<HeaderFrame, 'type' | 'stream_id' | 'topic' | 'timestamp'>>;

/** A complete header frame object, with the Python model's defaults for missing fields. */
export function headerFrame(f: HeaderFields): HeaderFrame {
  return {
    type: 'header',
    stream_id: f.stream_id,
    topic: f.topic,
    timestamp: f.timestamp,
    kind: f.kind ?? 'text',
    mime_type: f.mime_type ?? 'text/plain',
    total_length: f.total_length ?? null,
    attributes: f.attributes ?? {},
    destination_identities: f.destination_identities ?? [],
    operation_type: f.operation_type ?? 'create',
    version: f.version ?? 0,
    reply_to_id: f.reply_to_id ?? null,
    attached_stream_ids: f.attached_stream_ids ?? [],
    generated: f.generated ?? false,
    name: f.name ?? null,
    ...(f.sender_identity == null ? {} : { sender_identity: f.sender_identity }),
  };
}

/** Change this participant's name, metadata and/or attributes (merged; "" deletes a key). */
export interface UpdateParticipantFrame {
  type: 'update_participant';
  req: number;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
}

export interface RpcErrorWire {
  code: number;
  message: string;
  data?: string | null;
}

export interface RpcRequestFrame {
  type: 'rpc_request';
  id: string;
  destination: string;
  method: string;
  payload: string;
  response_timeout_ms: number;
  version: number;
}

export interface RpcAckFrame {
  type: 'rpc_ack';
  request_id: string;
  destination: string;
}

export interface RpcResponseFrame {
  type: 'rpc_response';
  request_id: string;
  destination: string;
  payload?: string;
  error?: RpcErrorWire;
}

export function chunkFrame(streamId: string, chunkIndex: number, content: string): string {
  const f: ChunkFrame = { type: 'chunk', stream_id: streamId, chunk_index: chunkIndex, content };
  return JSON.stringify(f);
}

export function trailerFrame(streamId: string, reason = '', attributes: Record<string, string> = {}): string {
  const f: TrailerFrame = { type: 'trailer', stream_id: streamId, reason, attributes };
  return JSON.stringify(f);
}

// ---- gateway -> client -------------------------------------------------------------------

export interface Permissions {
  can_publish_data: boolean;
  can_subscribe: boolean;
  /** LiveKit's `canUpdateOwnMetadata` */
  can_update_metadata: boolean;
  hidden: boolean;
}

export interface ParticipantInfo {
  identity: string;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  /** LiveKit's participant sid (`PA_...`) */
  sid: string;
  /** "standard", "agent", ... */
  kind: string;
  permission: Permissions | null;
}

export interface JoinedFrame {
  type: 'joined';
  room: string;
  session: string;
  participant: ParticipantInfo;
  permissions: Permissions;
  participants: ParticipantInfo[];
  /** LiveKit's room sid (`RM_...`) */
  room_sid: string;
}

export interface ParticipantJoinedFrame {
  type: 'participant_joined';
  participant: ParticipantInfo;
}

export interface ParticipantLeftFrame {
  type: 'participant_left';
  identity: string;
  reason: string;
}

export interface AckFrame {
  type: 'ack';
  req: number;
}

/** The router routed our numbered data packets up to `n` (cumulative). */
export interface DataAckFrame {
  type: 'data_ack';
  n: number;
}

/** A header as a receiver sees it: the gateway stamped the sender's identity. */
export interface DeliveredHeader extends HeaderFrame {
  sender: string;
}

/** A trailer as a receiver sees it: `code` is set when the system ended the stream. */
export interface DeliveredTrailer extends TrailerFrame {
  code: string;
}

export interface ClosedFrame {
  type: 'closed';
  stream_id: string;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  stream_id: string | null;
  req: number | null;
  /** `[first, last]`: our numbered data packets in that range failed with this error */
  packets: [number, number] | null;
}

// ---- session resume (docs/reliability.md), outside the ServerFrame union: recognised by prefix

/** Gateway -> client: every delivery of its inbox up to entry `at` was sent before this frame. */
export const MARK_PREFIX = '{"type":"mark"';
/** Gateway -> client: the replay of a resume is over; `session` is ours from now on. */
export const RESUMED_PREFIX = '{"type":"resumed"';

/** Client -> gateway: the first frame of a socket opened with `resume=1`. */
export interface ResumeFrame {
  type: 'resume';
  session: string;
  at: string;
  receiving: string[];
  handlers: [string, string][];
}

export interface GoAwayFrame {
  type: 'goaway';
  code: string;
  reason: string;
}

export interface ParticipantUpdatedFrame {
  type: 'participant_updated';
  participant: ParticipantInfo;
  /** the keys that changed ("" for a deleted one) */
  changed_attributes: Record<string, string>;
}

export interface DeliveredRpcRequest extends RpcRequestFrame {
  /** the caller's identity, stamped by its gateway */
  caller: string;
}

export interface DeliveredRpcAck extends RpcAckFrame {
  sender: string;
}

export interface DeliveredRpcResponse extends RpcResponseFrame {
  /** who answered ("" when the router answered for a recipient not in the room) */
  sender: string;
}

export type ServerFrame =
  | JoinedFrame
  | ParticipantJoinedFrame
  | ParticipantLeftFrame
  | AckFrame
  | DataAckFrame
  | DeliveredHeader
  | ChunkFrame
  | DeliveredTrailer
  | ClosedFrame
  | ErrorFrame
  | GoAwayFrame
  | ParticipantUpdatedFrame
  | DeliveredRpcRequest
  | DeliveredRpcAck
  | DeliveredRpcResponse;

/** A server frame that is not valid JSON or does not have its type's fields. */
export class BadFrame extends Error {
  override name = 'BadFrame';
}

type Obj = Record<string, unknown>;

function fail(what: string): never {
  throw new BadFrame(what);
}

function str(o: Obj, key: string, def?: string): string {
  const v = o[key] ?? def;
  if (typeof v !== 'string') fail(`field ${key} must be a string`);
  return v;
}

function optStr(o: Obj, key: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') fail(`field ${key} must be a string or null`);
  return v;
}

function int(o: Obj, key: string, def?: number): number {
  const v = o[key] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`field ${key} must be an integer`);
  return v;
}

function optInt(o: Obj, key: string): number | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    fail(`field ${key} must be a non-negative integer or null`);
  return v;
}

function bool(o: Obj, key: string, def: boolean): boolean {
  const v = o[key] ?? def;
  if (typeof v !== 'boolean') fail(`field ${key} must be a boolean`);
  return v;
}

function strList(o: Obj, key: string): string[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(`field ${key} must be a list of strings`);
  return v as string[];
}

function strMap(o: Obj, key: string): Record<string, string> {
  const v = o[key] ?? {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`field ${key} must be an object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Obj)) {
    if (typeof x !== 'string') fail(`field ${key}.${k} must be a string`);
    out[k] = x;
  }
  return out;
}

function obj(o: Obj, key: string): Obj {
  const v = o[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`field ${key} must be an object`);
  return v as Obj;
}

function permissions(o: Obj): Permissions {
  return {
    can_publish_data: bool(o, 'can_publish_data', true),
    can_subscribe: bool(o, 'can_subscribe', true),
    can_update_metadata: bool(o, 'can_update_metadata', false),
    hidden: bool(o, 'hidden', false),
  };
}

function participantInfo(o: Obj): ParticipantInfo {
  const perm = o['permission'];
  return {
    identity: str(o, 'identity'),
    name: str(o, 'name', ''),
    metadata: str(o, 'metadata', ''),
    attributes: strMap(o, 'attributes'),
    sid: str(o, 'sid', ''),
    kind: str(o, 'kind', 'standard'),
    permission: perm === undefined || perm === null ? null : permissions(obj(o, 'permission')),
  };
}

function rpcError(o: Obj): RpcErrorWire | undefined {
  const e = o['error'];
  if (e === undefined || e === null) return undefined;
  const eo = obj(o, 'error');
  return { code: int(eo, 'code'), message: str(eo, 'message'), data: optStr(eo, 'data') };
}

function header(o: Obj): DeliveredHeader {
  const kind = str(o, 'kind', 'text');
  if (kind !== 'text' && kind !== 'byte') fail(`unknown stream kind ${JSON.stringify(kind)}`);
  const op = str(o, 'operation_type', 'create');
  if (!['create', 'update', 'delete', 'reaction'].includes(op)) fail(`unknown operation_type ${JSON.stringify(op)}`);
  return {
    ...headerFrame({
      stream_id: str(o, 'stream_id'),
      topic: str(o, 'topic'),
      timestamp: int(o, 'timestamp'),
      kind,
      mime_type: str(o, 'mime_type', 'text/plain'),
      total_length: optInt(o, 'total_length'),
      attributes: strMap(o, 'attributes'),
      destination_identities: strList(o, 'destination_identities'),
      operation_type: op as OperationType,
      version: int(o, 'version', 0),
      reply_to_id: optStr(o, 'reply_to_id'),
      attached_stream_ids: strList(o, 'attached_stream_ids'),
      generated: bool(o, 'generated', false),
      name: optStr(o, 'name'),
    }),
    sender: str(o, 'sender'),
  };
}

/** An error's `packets` field: `[first, last]` or null. */
function packetRange(o: Obj): [number, number] | null {
  const p = o['packets'];
  if (p === undefined || p === null) return null;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((n) => Number.isInteger(n))) {
    fail('field packets must be [first, last]');
  }
  return [p[0] as number, p[1] as number];
}

/** Parse one JSON frame from the gateway; throws {@link BadFrame} when it is not one. */
export function parseServerFrame(text: string): ServerFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BadFrame(`frame is not valid JSON: ${String(e)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('frame is not a JSON object');
  const o = raw as Obj;
  const type = o['type'];
  switch (type) {
    case 'joined':
      return {
        type,
        room: str(o, 'room'),
        session: str(o, 'session'),
        participant: participantInfo(obj(o, 'participant')),
        permissions: permissions(obj(o, 'permissions')),
        participants: ((o['participants'] ?? []) as unknown[]).map((p) => {
          if (typeof p !== 'object' || p === null) fail('participants must be objects');
          return participantInfo(p as Obj);
        }),
        room_sid: str(o, 'room_sid', ''),
      };
    case 'participant_joined':
      return { type, participant: participantInfo(obj(o, 'participant')) };
    case 'participant_left':
      return { type, identity: str(o, 'identity'), reason: str(o, 'reason', '') };
    case 'ack':
      return { type, req: int(o, 'req') };
    case 'data_ack':
      return { type, n: int(o, 'n') };
    case 'header':
      return header(o);
    case 'chunk': {
      const index = int(o, 'chunk_index');
      if (index < 0) fail('field chunk_index must be non-negative');
      return { type, stream_id: str(o, 'stream_id'), chunk_index: index, content: str(o, 'content') };
    }
    case 'trailer':
      return {
        type,
        stream_id: str(o, 'stream_id'),
        reason: str(o, 'reason', ''),
        attributes: strMap(o, 'attributes'),
        code: str(o, 'code', ''),
      };
    case 'closed':
      return { type, stream_id: str(o, 'stream_id') };
    case 'error':
      return {
        type,
        code: str(o, 'code'),
        message: str(o, 'message'),
        stream_id: optStr(o, 'stream_id'),
        req: o['req'] === undefined || o['req'] === null ? null : int(o, 'req'),
        packets: packetRange(o),
      };
    case 'goaway':
      return { type, code: str(o, 'code'), reason: str(o, 'reason') };
    case 'participant_updated':
      return {
        type,
        participant: participantInfo(obj(o, 'participant')),
        changed_attributes: strMap(o, 'changed_attributes'),
      };
    case 'rpc_request':
      return {
        type,
        id: str(o, 'id'),
        destination: str(o, 'destination', ''),
        method: str(o, 'method'),
        payload: str(o, 'payload', ''),
        response_timeout_ms: int(o, 'response_timeout_ms', 8000),
        version: int(o, 'version', 1),
        caller: str(o, 'caller'),
      };
    case 'rpc_ack':
      return {
        type,
        request_id: str(o, 'request_id'),
        destination: str(o, 'destination', ''),
        sender: str(o, 'sender', ''),
      };
    case 'rpc_response': {
      const f: DeliveredRpcResponse = {
        type,
        request_id: str(o, 'request_id'),
        destination: str(o, 'destination', ''),
        sender: str(o, 'sender', ''),
      };
      const payload = optStr(o, 'payload');
      if (payload !== null) f.payload = payload;
      const error = rpcError(o);
      if (error) f.error = error;
      return f;
    }
    default:
      return fail(`unknown or missing frame type: ${JSON.stringify(type)}`);
  }
}
