// LiveKit's Node server SDK, unchanged, against roomstreams' Twirp RoomService.
// Usage: node smoke.mjs <api url> <key> <secret> <room>; prints one JSON object.
import { DataPacket_Kind, RoomServiceClient, TwirpError } from 'livekit-server-sdk';

const [url, key, secret, room] = process.argv.slice(2);
const svc = new RoomServiceClient(url, key, secret);

const rooms = await svc.listRooms([room]);
const people = await svc.listParticipants(room);
const updated = await svc.updateParticipant(room, 'alice', { metadata: 'from node', attributes: { via: 'node' } });
await svc.sendData(room, new TextEncoder().encode('hello from node'), DataPacket_Kind.RELIABLE, {
  topic: 'node',
  destinationIdentities: ['alice'],
});
let missing = null;
try {
  await svc.removeParticipant(room, 'nobody');
} catch (err) {
  missing = err instanceof TwirpError ? { code: err.code, status: err.status } : { other: String(err) };
}
console.log(
  JSON.stringify({
    rooms: rooms.map((r) => ({ name: r.name, numParticipants: r.numParticipants, sid: r.sid })),
    participants: people.map((p) => ({ identity: p.identity, name: p.name, sid: p.sid })),
    updated: { metadata: updated.metadata, attributes: updated.attributes },
    missing,
  }),
);
