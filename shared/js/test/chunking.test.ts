import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWellFormed, splitUtf8, utf8Len } from '../src/protocol/chunking.js';

const enc = new TextEncoder();

test('utf8Len matches TextEncoder for characters of every UTF-8 length', () => {
  for (const s of ['', 'abc', 'é', '€', '漢字', '😀', 'a😀b€cé', '\u0000\u007f\u0080\u07ff\u0800\uffff']) {
    assert.equal(utf8Len(s), enc.encode(s).length, JSON.stringify(s));
  }
});

test('splitUtf8: empty text yields nothing, short text one piece', () => {
  assert.deepEqual([...splitUtf8('')], []);
  assert.deepEqual([...splitUtf8('hello')], ['hello']);
});

test('splitUtf8 never exceeds the limit nor splits a character, and loses nothing', () => {
  const samples = [
    'a'.repeat(40_001),
    'é'.repeat(20_000),
    '€'.repeat(12_345),
    '😀'.repeat(9_999),
    'aé€😀'.repeat(7_000),
  ];
  for (const text of samples) {
    for (const max of [4, 5, 7, 15_000]) {
      const pieces = [...splitUtf8(text, max)];
      assert.equal(pieces.join(''), text);
      for (const p of pieces) {
        const bytes = enc.encode(p);
        assert.ok(bytes.length <= max, `piece of ${bytes.length} bytes > ${max}`);
        assert.ok(bytes.length > 0);
        assert.ok(isWellFormed(p), 'a surrogate pair was split');
        // re-decoding the bytes gives the same piece: no character was cut
        assert.equal(new TextDecoder('utf-8', { fatal: true }).decode(bytes), p);
      }
    }
  }
});

test('splitUtf8 fills chunks: 15000-byte chunks for ASCII, a cut moved back before a 4-byte character', () => {
  const pieces = [...splitUtf8('a'.repeat(30_001))];
  assert.deepEqual(
    pieces.map((p) => p.length),
    [15_000, 15_000, 1],
  );
  const text = 'a'.repeat(14_998) + '😀' + 'b';
  const cut = [...splitUtf8(text)];
  assert.deepEqual(
    cut.map((p) => enc.encode(p).length),
    [14_998, 5],
  );
});

test('splitUtf8 refuses a limit below the longest character', () => {
  assert.throws(() => [...splitUtf8('abc', 3)], RangeError);
});

test('isWellFormed finds lone surrogates', () => {
  assert.ok(isWellFormed('a😀b'));
  assert.ok(!isWellFormed('a\ud83d'));
  assert.ok(!isWellFormed('\ude00a'));
  assert.ok(!isWellFormed('\ud83d\ud83d'));
});
