import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RpcError } from '../src/exceptions.js';
import { Rpcs } from '../src/client/rpc.js';

function link() {
  const sent: Record<string, unknown>[] = [];
  return {
    sent,
    send: async (frame: string) => void sent.push(JSON.parse(frame)),
    ensureConnected: () => undefined,
  };
}

const tick = () => new Promise((r) => setTimeout(r, 1));

test('a call sends rpc_request and resolves with the response payload', async () => {
  const l = link();
  const rpcs = new Rpcs(l);
  const p = rpcs.perform({ destinationIdentity: 'bob', method: 'greet', payload: 'hi', responseTimeout: 10_000 });
  await tick();
  const req = l.sent[0]!;
  assert.deepEqual(
    { ...req, id: undefined },
    {
      type: 'rpc_request',
      id: undefined,
      destination: 'bob',
      method: 'greet',
      payload: 'hi',
      response_timeout_ms: 3000,
      version: 1,
    },
  );
  rpcs.onAck({ type: 'rpc_ack', request_id: req['id'] as string, destination: 'alice', sender: 'bob' });
  rpcs.onResponse({
    type: 'rpc_response',
    request_id: req['id'] as string,
    destination: 'alice',
    sender: 'bob',
    payload: 'hello',
  });
  assert.equal(await p, 'hello');
});

test("errors: the answer's, a departure (1503), a payload too large (1402), no ack in time (1501)", async () => {
  const l = link();
  const rpcs = new Rpcs(l);
  const p1 = rpcs.perform({ destinationIdentity: 'bob', method: 'm', payload: '' });
  await tick();
  rpcs.onResponse({
    type: 'rpc_response',
    request_id: l.sent[0]!['id'] as string,
    destination: 'alice',
    sender: '',
    error: { code: 1401, message: 'Recipient not found' },
  });
  await assert.rejects(
    p1,
    (e: unknown) => e instanceof RpcError && e.code === 1401 && e.message === 'Recipient not found',
  );
  const p2 = rpcs.perform({ destinationIdentity: 'carol', method: 'm', payload: '' });
  await tick();
  rpcs.participantLeft('carol');
  await assert.rejects(p2, (e: unknown) => e instanceof RpcError && e.code === 1503);
  await assert.rejects(
    rpcs.perform({ destinationIdentity: 'bob', method: 'm', payload: 'x'.repeat(15 * 1024 + 1) }),
    (e: unknown) => e instanceof RpcError && e.code === 1402,
  );
  await assert.rejects(
    rpcs.perform({ destinationIdentity: 'bob', method: 'm', payload: '', responseTimeout: 20 }),
    (e: unknown) => e instanceof RpcError && e.code === 1501,
  );
});

test("answering: ack at once, then the handler's payload, its RpcError, 1500 or 1400", async () => {
  const l = link();
  const rpcs = new Rpcs(l);
  rpcs.handlers.set('upper', (d) => d.payload.toUpperCase());
  rpcs.handlers.set('refuse', () => {
    throw new RpcError(42, 'no way', 'details');
  });
  rpcs.handlers.set('buggy', () => {
    throw new TypeError('oops');
  });
  const req = (id: string, method: string) => ({
    type: 'rpc_request' as const,
    id,
    destination: 'bob',
    method,
    payload: 'hi',
    response_timeout_ms: 1000,
    version: 1,
    caller: 'alice',
  });
  const origError = console.error;
  console.error = () => undefined; // the 1500 case logs the handler's error
  try {
    for (const [id, m] of [
      ['1', 'upper'],
      ['2', 'refuse'],
      ['3', 'buggy'],
      ['4', 'missing'],
    ] as const)
      rpcs.onRequest(req(id, m));
    for (let i = 0; i < 20 && l.sent.length < 8; i++) await tick();
  } finally {
    console.error = origError;
  }
  const of = (id: string) => l.sent.filter((f) => f['request_id'] === id);
  assert.deepEqual(of('1'), [
    { type: 'rpc_ack', request_id: '1', destination: 'alice' },
    { type: 'rpc_response', request_id: '1', destination: 'alice', payload: 'HI' },
  ]);
  assert.deepEqual(of('2')[1]!['error'], { code: 42, message: 'no way', data: 'details' });
  assert.deepEqual(of('3')[1]!['error'], { code: 1500, message: 'Application error in method handler' });
  assert.deepEqual(of('4')[1]!['error'], { code: 1400, message: 'Method not supported at destination' });
});
