/** Participants: the local one (who sends) and the remote ones (who are in the room); mirror of
 * `roomstreams/client/participant.py` with livekit-client's names. */

import { InvalidInput, PermissionDenied } from '../exceptions.js';
import { utf8Len } from '../protocol/chunking.js';
import {
  ErrorCode,
  headerFrame,
  type OperationType,
  type ParticipantInfo,
  type Permissions,
  type UpdateParticipantFrame,
} from '../protocol/frames.js';
import {
  MAX_PARTICIPANT_ATTRIBUTES_BYTES,
  MAX_PARTICIPANT_METADATA_BYTES,
  MAX_PARTICIPANT_NAME_BYTES,
} from '../protocol/limits.js';
import {
  openByteStream,
  sendFile,
  type ByteStreamWriter,
  type FileLike,
  type SendFileOptions,
  type StreamBytesOptions,
} from './bytestreams.js';
import { checkAttributes, checkDestinations, checkSize, checkStreamId, checkText, checkTopic } from './checks.js';
import { dataPacketFrame, type DataPublishOptions } from './data.js';
import type { PerformRpcParams, RpcHandler, Rpcs } from './rpc.js';
import { TextStreamWriter, type ByteStreamInfo, type RoomLink, type TextStreamInfo } from './streams.js';
import { randomId } from './util.js';

export interface ParticipantPermissions {
  canPublishData: boolean;
  canSubscribe: boolean;
  /** LiveKit's `canUpdateOwnMetadata`: may change its own name, metadata, attributes */
  canUpdateMetadata: boolean;
  hidden: boolean;
}

export function permissionsFrom(p: Permissions): ParticipantPermissions {
  return {
    canPublishData: p.can_publish_data,
    canSubscribe: p.can_subscribe,
    canUpdateMetadata: p.can_update_metadata,
    hidden: p.hidden,
  };
}

export class Participant {
  identity: string;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  /** LiveKit's participant sid (`PA_...`) */
  sid: string;
  /** "standard", "agent", ... (LiveKit's ParticipantKind, as its name) */
  kind: string;
  /** what its token grants, when the server tells */
  permissions: ParticipantPermissions | undefined;

  constructor(info: Partial<ParticipantInfo> & { identity: string }) {
    this.identity = info.identity;
    this.name = info.name ?? '';
    this.metadata = info.metadata ?? '';
    this.attributes = { ...(info.attributes ?? {}) };
    this.sid = info.sid ?? '';
    this.kind = info.kind ?? 'standard';
    this.permissions = info.permission ? permissionsFrom(info.permission) : undefined;
  }

  /** @internal the server's new info about this participant */
  _apply(info: ParticipantInfo): void {
    this.name = info.name;
    this.metadata = info.metadata;
    this.attributes = { ...info.attributes };
    if (info.sid) this.sid = info.sid;
    this.kind = info.kind;
    if (info.permission) this.permissions = permissionsFrom(info.permission);
  }
}

export class RemoteParticipant extends Participant {}

export interface StreamTextOptions {
  topic: string;
  destinationIdentities?: string[];
  attributes?: Record<string, string>;
  totalSize?: number;
  streamId?: string;
  /** livekit's `replyToStreamId` */
  replyToStreamId?: string;
  /** livekit's name: 'create' | 'update' | ... */
  type?: OperationType;
  version?: number;
  generated?: boolean;
  attachedStreamIds?: string[];
  /** LiveKit's `senderIdentity`: an agent speaking for another participant (agents only; the
   * gateway refuses it for other tokens) */
  senderIdentity?: string;
}

export interface SendTextOptions {
  topic: string;
  destinationIdentities?: string[];
  attributes?: Record<string, string>;
  replyToStreamId?: string;
  /** see {@link StreamTextOptions.senderIdentity} */
  senderIdentity?: string;
  /** Files sent as byte streams on the same topic (and to the same destinations) right after
   * the text stream's header, which lists their ids in `attachedStreamIds`. */
  attachments?: File[];
  /** called as the text (and attachments) are sent: bytes sent / total, in [0, 1] */
  onProgress?: (progress: number) => void;
}

/** This connection's participant: `sendText`/`streamText`, `sendFile`/`streamBytes` and
 * `publishData`. */
export class LocalParticipant extends Participant {
  override permissions: ParticipantPermissions = {
    canPublishData: true,
    canSubscribe: true,
    canUpdateMetadata: false,
    hidden: false,
  };
  private readonly room: RoomLink;
  private readonly rpc: Rpcs;

  constructor(room: RoomLink, rpc: Rpcs) {
    super({ identity: '' });
    this.room = room;
    this.rpc = rpc;
  }

  // -- name, metadata, attributes ------------------------------------------------------------

  /** Merge `attributes` into this participant's (an empty value deletes a key). Needs the
   * token's `canUpdateOwnMetadata` grant. Resolves once the router applied it: every
   * participant (this one too) gets `ParticipantAttributesChanged`. */
  async setAttributes(attributes: Record<string, string>): Promise<void> {
    const attrs: Record<string, string> = {};
    if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
      throw new InvalidInput('attributes must be an object of strings', ErrorCode.BAD_FRAME);
    }
    for (const [k, v] of Object.entries(attributes)) {
      if (typeof v !== 'string')
        throw new InvalidInput(`attribute ${JSON.stringify(k)} must be a string`, ErrorCode.BAD_FRAME);
      attrs[k] = v;
    }
    const merged = { ...this.attributes, ...attrs };
    let n = 0;
    for (const [k, v] of Object.entries(merged)) if (v !== '') n += utf8Len(k) + utf8Len(v);
    if (n > MAX_PARTICIPANT_ATTRIBUTES_BYTES) {
      throw new InvalidInput(
        `attributes of ${n} bytes exceed ${MAX_PARTICIPANT_ATTRIBUTES_BYTES}`,
        ErrorCode.METADATA_TOO_LARGE,
      );
    }
    await this.update({ attributes: attrs });
  }

  /** Replace this participant's metadata (`canUpdateOwnMetadata`); everyone gets
   * `ParticipantMetadataChanged`. */
  async setMetadata(metadata: string): Promise<void> {
    const m = String(metadata);
    if (utf8Len(m) > MAX_PARTICIPANT_METADATA_BYTES) {
      throw new InvalidInput(
        `metadata of ${utf8Len(m)} bytes exceeds ${MAX_PARTICIPANT_METADATA_BYTES}`,
        ErrorCode.METADATA_TOO_LARGE,
      );
    }
    await this.update({ metadata: m });
  }

  /** Replace this participant's name (`canUpdateOwnMetadata`); everyone gets
   * `ParticipantNameChanged`. */
  async setName(name: string): Promise<void> {
    const n = String(name);
    if (utf8Len(n) > MAX_PARTICIPANT_NAME_BYTES) {
      throw new InvalidInput(
        `name of ${utf8Len(n)} bytes exceeds ${MAX_PARTICIPANT_NAME_BYTES}`,
        ErrorCode.METADATA_TOO_LARGE,
      );
    }
    await this.update({ name: n });
  }

  private async update(fields: Omit<UpdateParticipantFrame, 'type' | 'req'>): Promise<void> {
    this.room.ensureConnected();
    if (!this.permissions.canUpdateMetadata) {
      throw new PermissionDenied('this token does not allow updating its own metadata (canUpdateOwnMetadata)');
    }
    await this.room.request((req) => JSON.stringify({ type: 'update_participant', req, ...fields }));
  }

  // -- RPC -----------------------------------------------------------------------------------

  /** Answer RPC calls of `method` with `handler(data)` (its return value is the response
   * payload). A handler may throw an RpcError to answer with it; any other error answers 1500. */
  registerRpcMethod(method: string, handler: RpcHandler): void {
    if (this.rpc.handlers.has(method)) {
      throw new InvalidInput(`RPC method "${method}" already registered`, 'rpc_method_exists');
    }
    this.rpc.handlers.set(method, handler);
  }

  unregisterRpcMethod(method: string): void {
    this.rpc.handlers.delete(method);
  }

  /** Call `method` at `destinationIdentity` and resolve with its response payload. Rejects with
   * an RpcError (LiveKit's codes): 1401 nobody of that identity in the room, 1503 it left
   * before answering, 1501/1502 the timeouts, 1402 a payload over 15 KiB, or the handler's own. */
  performRpc(params: PerformRpcParams): Promise<string> {
    return this.rpc.perform(params);
  }

  /** Open a text stream. Write to it, then close it: receivers' readers end only then. */
  async streamText(options: StreamTextOptions): Promise<TextStreamWriter> {
    return this.openText(options);
  }

  private async openText(options: StreamTextOptions, attachments: readonly File[] = []): Promise<TextStreamWriter> {
    const topic = checkTopic(options?.topic);
    const room = this.room;
    room.ensureCanPublish();
    const id = options.streamId === undefined ? randomId() : checkStreamId(options.streamId);
    const size = checkSize(options.totalSize);
    const destinations = checkDestinations(options.destinationIdentities);
    const fileIds = attachments.map(() => randomId());
    const info: TextStreamInfo = {
      id,
      mimeType: 'text/plain',
      topic,
      timestamp: Date.now(),
      attributes: checkAttributes(options.attributes),
      destinationIdentities: destinations,
      operationType: options.type ?? 'create',
      version: options.version ?? 0,
      attachedStreamIds: [...(options.attachedStreamIds ?? []), ...fileIds],
      generated: options.generated ?? false,
    };
    if (size !== undefined) info.size = size;
    if (options.replyToStreamId !== undefined) info.replyToId = options.replyToStreamId;
    const header = headerFrame({
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
      ...(options.senderIdentity === undefined ? {} : { sender_identity: options.senderIdentity }),
    });
    const writer = new TextStreamWriter(room, info);
    await room.openWriter(writer, header);
    try {
      for (let i = 0; i < attachments.length; i++) {
        await sendFile(room, attachments[i]!, { topic, destinationIdentities: destinations, streamId: fileIds[i]! });
      }
    } catch (e) {
      await writer.abort(`attachment failed: ${String(e)}`);
      throw e;
    }
    return writer;
  }

  /** Send a whole text (any size: it is chunked, a bounded amount at a time) as one stream;
   * resolves with its info once the router has routed its end. */
  async sendText(text: string, options: SendTextOptions): Promise<TextStreamInfo> {
    checkText(text);
    checkTopic(options?.topic);
    const attachments = options.attachments ?? [];
    const textBytes = utf8Len(text);
    const total = textBytes + attachments.reduce((n, f) => n + f.size, 0);
    let sent = 0;
    const progress = options.onProgress;
    const report = (n: number): void => {
      sent += n;
      if (progress) {
        try {
          progress(total === 0 ? 1 : sent / total);
        } catch {
          // a progress callback must not break the send
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
        senderIdentity: options.senderIdentity,
      },
      attachments,
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
  async streamBytes(options: StreamBytesOptions): Promise<ByteStreamWriter> {
    return openByteStream(this.room, options);
  }

  /** Send a File/Blob (read a block at a time: memory stays bounded whatever its size), or
   * bytes in memory with `options.name`, as one byte stream. Resolves with its info once the
   * router has routed its end. */
  async sendFile(file: FileLike, options: SendFileOptions): Promise<ByteStreamInfo> {
    return sendFile(this.room, file, options);
  }

  /** Send a data packet (at most 15000 bytes; a string is sent as UTF-8) to every other
   * participant, or to `destinationIdentities`. A reliable one (the default) resolves once the
   * router routed it (its data-packet ack; calls in flight share acks) and rejects with a
   * ServerError or ConnectionClosed saying why it may not arrive; `reliable: false` resolves
   * once it is on the socket (lossy: may be dropped under pressure). */
  async publishData(data: Uint8Array | string, options: DataPublishOptions = {}): Promise<void> {
    const lossy = options.reliable === false;
    // checks the input (throws before sending); a reliable one gets its number when written
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
}
