import type { FastifyPluginAsync } from 'fastify';
import { ROUTES } from '../../src/http/contract.js';
import type { Store } from '../../src/index.js';
import { readAt } from '../history-access.js';
import { operation, READ_ERRORS } from '../spec.js';
import { branchParams, nullableHex40, readAtQuery, violationSchema } from './shared.js';

/** What validating a tree answers (src/store/types.ts, ValidationReport). */
const validationReport = {
  type: 'object',
  required: ['commit', 'patterns', 'checked', 'valid', 'violations'],
  properties: {
    commit: nullableHex40,
    patterns: { type: 'array', items: { type: 'string' }, description: 'The patterns of .store/schema.json used.' },
    checked: { type: 'integer', description: 'Values a pattern matched, each checked.' },
    valid: { type: 'boolean' },
    violations: { type: 'array', items: violationSchema },
  },
} as const;

/** A branch's schemas (.store/schema.json): its whole tree held against them. Writes are checked by the store. */
export function schemaRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { branch: string }; Querystring: { at?: string; nearest?: 'before' } }>(
      ROUTES.validate,
      {
        schema: operation({
          operationId: 'validate',
          summary: 'Check every value of {branch} (or of a revision, `at`) against the schemas the tree declares',
          tags: ['schemas'],
          params: branchParams,
          querystring: { type: 'object', additionalProperties: false, properties: readAtQuery },
          ok: {
            200: { description: 'Every violation (valid: true when there is none).', json: validationReport },
          },
          errors: READ_ERRORS,
        }),
      },
      async (request) => {
        const { branch } = request.params;
        const { at, nearest } = await readAt(request, store, branch, request.query.at, request.query.nearest);
        return store.validate({ branch, at, nearest });
      },
    );
  };
}
