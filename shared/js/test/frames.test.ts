import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BadFrame,
  chunkFrame,
  headerFrame,
  parseServerFrame,
  subscribeFrame,
  trailerFrame,
} from '../src/protocol/frames.js';

test('client frames have exactly the fields of the Python models', () => {
  assert.deepEqual(JSON.parse(subscribeFrame('subscribe', 'byte', 'files', 3)), {
    type: 'subscribe',
    kind: 'byte',
    topic: 'files',
    req: 3,
  });
  assert.deepEqual(Object.keys(headerFrame({ stream_id: 's', topic: 't', timestamp: 1 })).sort(), [
    'attached_stream_ids',
    'attributes',
    'destination_identities',
    'generated',
    'kind',
    'mime_type',
    'name',
    'operation_type',
    'reply_to_id',
    'stream_id',
    'timestamp',
    'topic',
    'total_length',
    'type',
    'version',
  ]);
  assert.deepEqual(JSON.parse(chunkFrame('s', 2, 'hé')), {
    type: 'chunk',
    stream_id: 's',
    chunk_index: 2,
    content: 'hé',
  });
  assert.deepEqual(JSON.parse(trailerFrame('s', 'why', { a: 'b' })), {
    type: 'trailer',
    stream_id: 's',
    reason: 'why',
    attributes: { a: 'b' },
  });
});

test('a header frame gets the Python defaults', () => {
  const h = headerFrame({ stream_id: 's', topic: 't', timestamp: 5 });
  assert.equal(h.kind, 'text');
  assert.equal(h.mime_type, 'text/plain');
  assert.equal(h.total_length, null);
  assert.equal(h.operation_type, 'create');
  assert.equal(h.name, null);
});

test('server frames parse, with defaults for missing optional fields', () => {
  const joined = parseServerFrame(
    JSON.stringify({
      type: 'joined',
      room: 'r',
      session: 'x',
      participant: { identity: 'alice', sid: 'PA_1' },
      permissions: { can_publish_data: false, can_subscribe: true },
      participants: [{ identity: 'bob', name: 'Bob' }],
    }),
  );
  assert.equal(joined.type, 'joined');
  if (joined.type === 'joined') {
    assert.equal(joined.participant.identity, 'alice');
    assert.equal(joined.permissions.can_publish_data, false);
    assert.deepEqual(joined.participants, [
      { identity: 'bob', name: 'Bob', metadata: '', attributes: {}, sid: '', kind: 'standard', permission: null },
    ]);
    assert.equal(joined.participant.sid, 'PA_1');
    assert.equal(joined.permissions.can_update_metadata, false);
    assert.equal(joined.room_sid, '');
  }
  const h = parseServerFrame(
    '{"type":"header","stream_id":"s","topic":"t","timestamp":1,"sender":"bob","total_length":10}',
  );
  assert.equal(h.type, 'header');
  if (h.type === 'header') {
    assert.equal(h.sender, 'bob');
    assert.equal(h.total_length, 10);
    assert.deepEqual(h.attributes, {});
  }
  const t = parseServerFrame('{"type":"trailer","stream_id":"s","reason":"gone","code":"sender_left"}');
  assert.deepEqual(t, { type: 'trailer', stream_id: 's', reason: 'gone', attributes: {}, code: 'sender_left' });
  assert.deepEqual(parseServerFrame('{"type":"ack","req":4}'), { type: 'ack', req: 4 });
  assert.deepEqual(parseServerFrame('{"type":"error","code":"bad_topic","message":"m","stream_id":null}'), {
    type: 'error',
    code: 'bad_topic',
    message: 'm',
    stream_id: null,
    req: null,
    packets: null,
  });
  assert.deepEqual(parseServerFrame('{"type":"data_ack","n":7}'), { type: 'data_ack', n: 7 });
  const lost = parseServerFrame('{"type":"error","code":"lagged","message":"m","packets":[3,9]}');
  assert.equal(lost.type === 'error' && lost.packets?.join(), '3,9');
  assert.deepEqual(parseServerFrame('{"type":"closed","stream_id":"s"}'), { type: 'closed', stream_id: 's' });
  assert.deepEqual(parseServerFrame('{"type":"goaway","code":"1001","reason":"draining"}'), {
    type: 'goaway',
    code: '1001',
    reason: 'draining',
  });
  assert.deepEqual(parseServerFrame('{"type":"participant_left","identity":"bob"}'), {
    type: 'participant_left',
    identity: 'bob',
    reason: '',
  });
});

test('bad server frames are refused with a reason', () => {
  assert.throws(() => parseServerFrame('not json'), BadFrame);
  assert.throws(() => parseServerFrame('[1]'), /not a JSON object/);
  assert.throws(() => parseServerFrame('{"type":"nope"}'), /unknown or missing frame type/);
  assert.throws(
    () => parseServerFrame('{"type":"chunk","stream_id":"s","chunk_index":-1,"content":""}'),
    /non-negative/,
  );
  assert.throws(() => parseServerFrame('{"type":"chunk","stream_id":"s","chunk_index":1.5,"content":""}'), /integer/);
  assert.throws(() => parseServerFrame('{"type":"header","stream_id":"s","topic":"t","timestamp":1}'), /sender/);
  assert.throws(
    () =>
      parseServerFrame('{"type":"header","stream_id":"s","topic":"t","timestamp":1,"sender":"b","attributes":{"a":1}}'),
    /attributes.a/,
  );
});

test('participant updates and RPC frames parse', () => {
  const u = parseServerFrame(
    JSON.stringify({
      type: 'participant_updated',
      participant: { identity: 'bob', attributes: { a: '1' }, permission: { can_update_metadata: true } },
      changed_attributes: { a: '1', gone: '' },
    }),
  );
  assert.equal(u.type, 'participant_updated');
  if (u.type === 'participant_updated') {
    assert.deepEqual(u.changed_attributes, { a: '1', gone: '' });
    assert.equal(u.participant.permission?.can_update_metadata, true);
    assert.equal(u.participant.permission?.can_publish_data, true);
  }
  assert.deepEqual(
    parseServerFrame(
      '{"type":"rpc_request","id":"r1","destination":"bob","method":"greet","payload":"hi","response_timeout_ms":8000,"version":1,"caller":"alice"}',
    ),
    {
      type: 'rpc_request',
      id: 'r1',
      destination: 'bob',
      method: 'greet',
      payload: 'hi',
      response_timeout_ms: 8000,
      version: 1,
      caller: 'alice',
    },
  );
  assert.deepEqual(parseServerFrame('{"type":"rpc_ack","request_id":"r1","destination":"alice","sender":"bob"}'), {
    type: 'rpc_ack',
    request_id: 'r1',
    destination: 'alice',
    sender: 'bob',
  });
  assert.deepEqual(
    parseServerFrame('{"type":"rpc_response","request_id":"r1","destination":"alice","payload":"ok","sender":"bob"}'),
    {
      type: 'rpc_response',
      request_id: 'r1',
      destination: 'alice',
      sender: 'bob',
      payload: 'ok',
    },
  );
  assert.deepEqual(
    parseServerFrame(
      '{"type":"rpc_response","request_id":"r1","destination":"alice","error":{"code":1401,"message":"Recipient not found","data":null},"sender":""}',
    ),
    {
      type: 'rpc_response',
      request_id: 'r1',
      destination: 'alice',
      sender: '',
      error: { code: 1401, message: 'Recipient not found', data: null },
    },
  );
  assert.throws(
    () => parseServerFrame('{"type":"rpc_response","request_id":"r1","error":{"code":"x","message":"m"}}'),
    /integer/,
  );
});
