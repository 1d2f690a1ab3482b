/** Byte stream names: a plain file name, never a path (mirror of
 * `roomstreams/protocol/filenames.py`). */

import { MAX_FILE_NAME_BYTES } from './limits.js';
import { utf8Len } from './chunking.js';

/** Why `name` is not a safe file name, or undefined when it is. */
export function fileNameProblem(name: string | null | undefined): string | undefined {
  if (!name) return 'a byte stream needs a non-empty name';
  if (utf8Len(name) > MAX_FILE_NAME_BYTES) return `name longer than ${MAX_FILE_NAME_BYTES} bytes`;
  const shown = JSON.stringify(name);
  if (name.includes('/') || name.includes('\\')) return `name ${shown} contains a path separator`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return `name ${shown} contains a control character`;
  }
  if (name === '.' || name === '..') return `name ${shown} is not a file name`;
  if (/^[A-Za-z]:/.test(name)) return `name ${shown} is an absolute path`;
  return undefined;
}
