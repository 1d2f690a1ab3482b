/**
 * roomstreams for browsers and Node: LiveKit-style text streams, byte streams and data packets
 * between the participants of a room, with livekit-client's API for its data features.
 *
 * ```ts
 * import { Room, RoomEvent } from 'roomstreams';
 * const room = new Room();
 * room.registerTextStreamHandler('chat', async (reader, { identity }) => {
 *   console.log(identity, 'says:', await reader.readAll());
 * });
 * await room.connect('ws://127.0.0.1:7880', token);
 * await room.localParticipant.sendText('hello', { topic: 'chat' });
 * ```
 */

export { Room } from './client/room.js';
export type {
  ByteStreamHandler,
  ParticipantInfoArg,
  RoomConnectOptions,
  RoomOptions,
  TextStreamHandler,
  TokenSource,
} from './client/room.js';
export { ConnectionState, DataPacket_Kind, RoomEvent } from './client/events.js';
export type { RoomEventCallbacks } from './client/events.js';
export { LocalParticipant, Participant, RemoteParticipant } from './client/participant.js';
export type { ParticipantPermissions, SendTextOptions, StreamTextOptions } from './client/participant.js';
export type { RpcErrorName } from './exceptions.js';
export { StreamReaderBase, StreamWriterBase, TextStreamReader, TextStreamWriter } from './client/streams.js';
export type { BaseStreamInfo, ByteStreamInfo, ReadAllOptions, StreamState, TextStreamInfo } from './client/streams.js';
export { ByteStreamReader, ByteStreamWriter } from './client/bytestreams.js';
export type { FileLike, SendFileOptions, StreamBytesOptions } from './client/bytestreams.js';
export type { DataPublishOptions } from './client/data.js';
export type { PerformRpcParams, RpcHandler, RpcInvocationData } from './client/rpc.js';
export type { WebSocketCtor, WebSocketLike } from './client/socket.js';
export {
  AuthError,
  ConnectError,
  ConnectionClosed,
  InvalidInput,
  PermissionDenied,
  RoomStreamsError,
  RpcError,
  RpcErrorCode,
  ServerError,
  StreamAborted,
  StreamClosed,
  StreamError,
  StreamSizeMismatch,
  UnsafeFileName,
} from './exceptions.js';
export { ErrorCode } from './protocol/frames.js';
export { MAX_CHUNK_BYTES, MAX_DATA_BYTES, MAX_RPC_PAYLOAD_BYTES, MAX_TOPIC_BYTES } from './protocol/limits.js';
export { splitUtf8, utf8Len } from './protocol/chunking.js';

/** The package version (the Python package's). */
export const version = '0.1.0';
