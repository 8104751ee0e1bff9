import type { FastifyPluginAsync } from 'fastify';
import { type Me, ROUTES } from '../../src/http/contract.js';
import { checkBranchName, Grants, type Store } from '../../src/index.js';
import { operation } from '../spec.js';

const rights = {
  type: 'object',
  required: ['read', 'write'],
  properties: { read: { type: 'boolean' }, write: { type: 'boolean' } },
} as const;

/**
 * Who the caller is and what it may do at some paths of a branch: what a client such as the web UI needs to show
 * only the controls that will work (a write control where the token may write). The rules themselves stay the
 * server's; this answers from them (server/auth.ts).
 */
export function meRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { branch?: string; path?: string | string[] } }>(
      ROUTES.me,
      {
        schema: operation({
          operationId: 'me',
          summary: 'The caller: its token’s name and roles, and its rights at the paths asked about',
          tags: ['meta'],
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              branch: { type: 'string', description: 'The branch the paths are on (default: the default branch).' },
              path: {
                anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 100 }],
                description: 'A key, or a directory with `/` at its end (empty: the top); repeatable.',
              },
            },
          },
          ok: {
            200: {
              description: 'The caller.',
              json: {
                type: 'object',
                required: ['auth', 'name', 'roles', 'admin', 'branch', 'paths'],
                properties: {
                  auth: { type: 'boolean', description: 'Whether the store requires tokens.' },
                  name: { type: ['string', 'null'] },
                  roles: { type: 'array', items: { type: 'string' } },
                  admin: { type: 'boolean' },
                  branch: { type: 'string' },
                  paths: { type: 'object', additionalProperties: rights },
                },
              },
            },
          },
          errors: [400],
        }),
      },
      async (request): Promise<Me> => {
        const { enabled, principal, grants } = request.access;
        const branch = checkBranchName(request.query.branch ?? store.defaultBranch);
        const paths: Me['paths'] = {};
        for (const path of [request.query.path ?? []].flat()) {
          paths[path] = {
            read: grants.can('read', branch, path),
            write: grants.can(Grants.writeRight(path), branch, path),
          };
        }
        return {
          auth: enabled,
          name: principal?.name ?? null,
          roles: principal?.roles ?? [],
          admin: grants.isAdmin(),
          branch,
          paths,
        };
      },
    );
  };
}
