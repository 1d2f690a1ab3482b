/** Protocol limits (mirror of `roomstreams/protocol/limits.py`): the client never exceeds them,
 * the gateway enforces them. */

/** Largest chunk content, in bytes: UTF-8 bytes of a text chunk, payload of a binary byte chunk
 * (LiveKit's STREAM_CHUNK_SIZE). */
export const MAX_CHUNK_BYTES = 15_000;
/** Largest data packet payload (`publishData`), in bytes: LiveKit's limit for reliable packets
 * (15 KiB). */
export const MAX_DATA_BYTES = 15 * 1024;
/** Largest JSON meta of a data packet frame, in bytes. */
export const MAX_DATA_META_BYTES = 15_000;
/** Longest byte stream name (a file name), in UTF-8 bytes. */
export const MAX_FILE_NAME_BYTES = 255;
/** Largest header frame, serialised, in bytes. */
export const MAX_HEADER_BYTES = 15_000;
/** Largest WebSocket message the gateway accepts from a client. */
export const MAX_FRAME_BYTES = 96 * 1024;
export const MAX_TOPIC_BYTES = 256;
export const MAX_STREAM_ID_BYTES = 128;
export const MAX_IDENTITY_BYTES = 256;
export const MAX_ATTRIBUTES_BYTES = 8 * 1024;
/** LiveKit's limits on what a participant sets of itself (`setName`, `setMetadata`,
 * `setAttributes`), in UTF-8 bytes; attributes count keys and values, all of them after the merge. */
export const MAX_PARTICIPANT_NAME_BYTES = 256;
export const MAX_PARTICIPANT_METADATA_BYTES = 64_000;
export const MAX_PARTICIPANT_ATTRIBUTES_BYTES = 64_000;
/** Largest RPC request or response payload, in UTF-8 bytes (LiveKit's 15 KiB). */
export const MAX_RPC_PAYLOAD_BYTES = 15 * 1024;
