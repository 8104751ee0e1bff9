import { invalidArgument } from '../errors.js';
import { fromUtf8 } from '../objects/object.js';

/**
 * A JSON text the store reads as configuration (a `.store/*.json` file's bytes, or a policy a caller gives), parsed;
 * INVALID_ARGUMENT naming it (`name`) and, with `advice`, what to do.
 */
export function parseJsonFile(content: Uint8Array | string, name: string, advice = ''): unknown {
  try {
    return JSON.parse(typeof content === 'string' ? content : fromUtf8.decode(content));
  } catch (e) {
    throw invalidArgument(`${name} is not valid JSON (${(e as Error).message})${advice}`);
  }
}
