/** Splitting text into chunks of at most N UTF-8 bytes without splitting a character (mirror of
 * `roomstreams/protocol/chunking.py`). Works on the string itself: a 20 MB text never gets a
 * 20 MB encoded copy. */

import { MAX_CHUNK_BYTES } from './limits.js';

/** UTF-8 size of the UTF-16 code unit at `i` of `text`, and how many units it spans. A lone
 * surrogate counts as U+FFFD (3 bytes), what `TextEncoder` makes of it. */
function unitAt(text: string, i: number): [bytes: number, units: number] {
  const c = text.charCodeAt(i);
  if (c < 0x80) return [1, 1];
  if (c < 0x800) return [2, 1];
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return [4, 2];
  }
  return [3, 1];
}

/** Length of `text` in UTF-8 bytes. */
export function utf8Len(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length;) {
    const [b, u] = unitAt(text, i);
    n += b;
    i += u;
  }
  return n;
}

/** True when `text` has no lone surrogate (it can be sent as UTF-8 unchanged). */
export function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/** Yield pieces of `text`, each at most `maxBytes` UTF-8 bytes, in order. A cut never falls
 * inside a character (nor between the two halves of a surrogate pair). Empty text yields
 * nothing. */
export function* splitUtf8(text: string, maxBytes: number = MAX_CHUNK_BYTES): Generator<string> {
  if (maxBytes < 4) {
    throw new RangeError('maxBytes must be at least 4 (the longest UTF-8 character)');
  }
  if (text.length * 3 <= maxBytes) {
    // fast path: a UTF-16 unit is at most 3 UTF-8 bytes (a pair of them, 4)
    if (text) yield text;
    return;
  }
  let start = 0;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const [b, u] = unitAt(text, i);
    if (bytes + b > maxBytes) {
      yield text.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += b;
    i += u;
  }
  if (start < text.length) yield text.slice(start);
}
