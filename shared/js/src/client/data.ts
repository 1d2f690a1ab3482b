/**
 * Data packets: `LocalParticipant.publishData` and the `DataReceived` event (mirror of
 * `roomstreams/client/data.py`). A packet is one binary frame of at most 15000 bytes of
 * payload; it goes through the room log like everything else, so it is ordered with the room's
 * other traffic. `reliable` (the default) packets are numbered and `publishData` resolves once
 * the router routed them (its `data_ack`, shared by the calls in flight); `reliable: false` ones
 * resolve once on the socket and may be dropped by a receiver's gateway when that receiver's
 * send queue is congested (LiveKit's lossy channel).
 */

import { InvalidInput } from '../exceptions.js';
import { decodeDataPacket, encodeDataPacket, parseDeliveredMeta, type DataMeta } from '../protocol/binary.js';
import { ErrorCode } from '../protocol/frames.js';
import { MAX_DATA_BYTES } from '../protocol/limits.js';
import { checkDataTopic, checkDestinations } from './checks.js';
import { DataPacket_Kind } from './events.js';
import { utf8 } from './util.js';

export interface DataPublishOptions {
  /** true (default): resolve once the router routed it (acknowledged); false: lossy, may be
   * dropped under pressure (carried to receivers as `kind`) */
  reliable?: boolean;
  /** only these participants receive it (default: everyone else in the room) */
  destinationIdentities?: string[];
  topic?: string;
}

/** A data packet as a receiver gets it. */
export interface ReceivedDataPacket {
  payload: Uint8Array;
  /** who sent it (stamped by the sender's gateway from its token) */
  participantIdentity: string;
  topic: string;
  kind: DataPacket_Kind;
  destinationIdentities: string[];
}

/** The binary frame of a packet to publish (numbered `number` when > 0); throws
 * {@link InvalidInput} on bad input. */
export function dataPacketFrame(
  payload: Uint8Array | string,
  options: DataPublishOptions = {},
  number = 0,
): Uint8Array {
  let data: Uint8Array;
  if (typeof payload === 'string') data = utf8.encode(payload);
  else if (payload instanceof Uint8Array) data = payload;
  else throw new InvalidInput('publishData takes a Uint8Array (or a string, sent as UTF-8)', ErrorCode.BAD_FRAME);
  if (data.byteLength > MAX_DATA_BYTES) {
    throw new InvalidInput(
      `data packet of ${data.byteLength} bytes exceeds ${MAX_DATA_BYTES} bytes`,
      ErrorCode.DATA_TOO_LARGE,
    );
  }
  const meta: DataMeta = {
    topic: checkDataTopic(options.topic),
    destination_identities: checkDestinations(options.destinationIdentities),
  };
  return encodeDataPacket(utf8.encode(JSON.stringify(meta)), data, options.reliable ?? true, number);
}

/** Decode a delivered data packet frame (throws BadBinaryFrame when malformed). */
export function packetFromFrame(frame: Uint8Array): ReceivedDataPacket {
  const p = decodeDataPacket(frame);
  const meta = parseDeliveredMeta(p.meta);
  return {
    payload: p.payload.slice(),
    participantIdentity: meta.sender,
    topic: meta.topic,
    kind: p.reliable ? DataPacket_Kind.RELIABLE : DataPacket_Kind.LOSSY,
    destinationIdentities: meta.destination_identities,
  };
}
