/** Checks of what the page asks to send, made before anything is sent: the same rules (and
 * error codes) as the gateway's, so bad input gets a clear error at once. */

import { InvalidInput, UnsafeFileName } from '../exceptions.js';
import { utf8Len, isWellFormed } from '../protocol/chunking.js';
import { fileNameProblem } from '../protocol/filenames.js';
import { ErrorCode } from '../protocol/frames.js';
import { MAX_ATTRIBUTES_BYTES, MAX_IDENTITY_BYTES, MAX_STREAM_ID_BYTES, MAX_TOPIC_BYTES } from '../protocol/limits.js';

/** A stream's topic: "" is LiveKit's default (allowed), at most 256 UTF-8 bytes. */
export function checkTopic(topic: unknown): string {
  if (topic === undefined || topic === null) return '';
  if (typeof topic !== 'string') throw new InvalidInput('topic must be a string', ErrorCode.BAD_TOPIC);
  const n = utf8Len(topic);
  if (n > MAX_TOPIC_BYTES)
    throw new InvalidInput(`topic of ${n} bytes exceeds ${MAX_TOPIC_BYTES}`, ErrorCode.BAD_TOPIC);
  return topic;
}

/** A data packet's topic may be empty. */
export function checkDataTopic(topic: unknown): string {
  if (topic === undefined) return '';
  if (typeof topic !== 'string') throw new InvalidInput('topic must be a string', ErrorCode.BAD_TOPIC);
  if (utf8Len(topic) > MAX_TOPIC_BYTES)
    throw new InvalidInput(`topic longer than ${MAX_TOPIC_BYTES} bytes`, ErrorCode.BAD_TOPIC);
  return topic;
}

export function checkDestinations(dests: unknown): string[] {
  if (dests === undefined || dests === null) return [];
  if (!Array.isArray(dests))
    throw new InvalidInput('destinationIdentities must be an array of identities', ErrorCode.BAD_FRAME);
  for (const d of dests) {
    if (typeof d !== 'string' || d === '' || utf8Len(d) > MAX_IDENTITY_BYTES) {
      throw new InvalidInput('destination identities must be non-empty', ErrorCode.BAD_FRAME);
    }
  }
  return [...(dests as string[])];
}

export function checkAttributes(attributes: unknown): Record<string, string> {
  if (attributes === undefined || attributes === null) return {};
  if (typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw new InvalidInput('attributes must be an object of strings', ErrorCode.BAD_FRAME);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes as Record<string, unknown>)) {
    if (typeof v !== 'string')
      throw new InvalidInput(`attribute ${JSON.stringify(k)} must be a string`, ErrorCode.BAD_FRAME);
    out[k] = v;
  }
  if (utf8Len(JSON.stringify(out)) > MAX_ATTRIBUTES_BYTES)
    throw new InvalidInput('attributes too large', ErrorCode.BAD_FRAME);
  return out;
}

export function checkStreamId(id: unknown): string {
  if (typeof id !== 'string' || id === '' || utf8Len(id) > MAX_STREAM_ID_BYTES) {
    throw new InvalidInput(`stream_id must be 1 to ${MAX_STREAM_ID_BYTES} bytes`, ErrorCode.BAD_FRAME);
  }
  return id;
}

export function checkText(text: unknown, what = 'text'): string {
  if (typeof text !== 'string') throw new InvalidInput(`${what} must be a string`, ErrorCode.BAD_FRAME);
  if (!isWellFormed(text)) {
    throw new InvalidInput(
      `${what} is not valid UTF-16: it has a lone surrogate, which UTF-8 cannot carry`,
      ErrorCode.BAD_UTF8,
    );
  }
  return text;
}

export function checkFileName(name: unknown, streamId?: string): string {
  const problem = fileNameProblem(typeof name === 'string' ? name : undefined);
  if (problem !== undefined) throw new UnsafeFileName(problem, streamId);
  return name as string;
}

export function checkSize(size: unknown): number | undefined {
  if (size === undefined || size === null) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidInput('totalSize must be a non-negative integer', ErrorCode.BAD_FRAME);
  }
  return size;
}
