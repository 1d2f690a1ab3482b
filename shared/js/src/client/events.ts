/** Room events (livekit-client's names and string values) and a small typed event emitter. */

import type { Participant, RemoteParticipant } from './participant.js';
import type { RoomStreamsError } from '../exceptions.js';
import { logError } from './util.js';

export enum ConnectionState {
  Disconnected = 'disconnected',
  Connecting = 'connecting',
  Connected = 'connected',
  Reconnecting = 'reconnecting',
}

export enum RoomEvent {
  Connected = 'connected',
  Reconnecting = 'reconnecting',
  Reconnected = 'reconnected',
  Disconnected = 'disconnected',
  ConnectionStateChanged = 'connectionStateChanged',
  ParticipantConnected = 'participantConnected',
  ParticipantDisconnected = 'participantDisconnected',
  DataReceived = 'dataReceived',
  ParticipantAttributesChanged = 'participantAttributesChanged',
  ParticipantMetadataChanged = 'participantMetadataChanged',
  ParticipantNameChanged = 'participantNameChanged',
  /** Not in livekit-client: the gateway reported an error that no pending call was waiting for. */
  ServerError = 'serverError',
}

/** livekit's `DataPacket_Kind`: every packet is delivered reliably here; the flag is carried. */
export enum DataPacket_Kind {
  RELIABLE = 0,
  LOSSY = 1,
}

export type RoomEventCallbacks = {
  connected: () => void;
  reconnecting: () => void;
  reconnected: () => void;
  /** `reason` says why (livekit passes a numeric DisconnectReason here). */
  disconnected: (reason?: string) => void;
  connectionStateChanged: (state: ConnectionState) => void;
  participantConnected: (participant: RemoteParticipant) => void;
  participantDisconnected: (participant: RemoteParticipant) => void;
  dataReceived: (payload: Uint8Array, participant?: RemoteParticipant, kind?: DataPacket_Kind, topic?: string) => void;
  /** the keys that changed ("" for a deleted one), and who (the local participant too) */
  participantAttributesChanged: (changedAttributes: Record<string, string>, participant: Participant) => void;
  /** the previous metadata, as livekit-client passes it */
  participantMetadataChanged: (prevMetadata: string | undefined, participant: Participant) => void;
  /** the new name */
  participantNameChanged: (name: string, participant: Participant) => void;
  serverError: (error: RoomStreamsError) => void;
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

export class TypedEmitter<E extends { [K in keyof E]: Listener }> {
  private readonly listeners = new Map<keyof E, Listener[]>();

  on<K extends keyof E>(event: K, listener: E[K]): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  once<K extends keyof E>(event: K, listener: E[K]): this {
    const wrapper = ((...args: unknown[]) => {
      this.off(event, wrapper as E[K]);
      (listener as Listener)(...args);
    }) as E[K];
    return this.on(event, wrapper);
  }

  off<K extends keyof E>(event: K, listener: E[K]): this {
    const list = this.listeners.get(event);
    const i = list?.indexOf(listener) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    return this;
  }

  removeAllListeners(event?: keyof E): this {
    if (event === undefined) this.listeners.clear();
    else this.listeners.delete(event);
    return this;
  }

  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Call every listener; one that throws is logged and does not stop the others. */
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): boolean {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const fn of [...list]) {
      try {
        const r: unknown = fn(...args);
        if (r && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then(undefined, (e) => logError(`listener for ${String(event)} failed`, e));
        }
      } catch (e) {
        logError(`listener for ${String(event)} threw`, e);
      }
    }
    return true;
  }
}
