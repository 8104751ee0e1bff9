import type { FastifyError, FastifyInstance } from 'fastify';
import { type ErrorCode, isStoreError } from '../src/index.js';

/** The one table from error code to HTTP status. */
export const STATUS: Record<ErrorCode, number> = {
  INVALID_KEY: 400,
  INVALID_BRANCH: 400,
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  KEY_IS_DIRECTORY: 409,
  KEY_IS_VALUE: 409,
  CONFLICT: 409,
  BRANCH_EXISTS: 409,
  REPOSITORY_EXISTS: 409,
  COMPACTED: 410,
  PRECONDITION_FAILED: 412,
  TOO_LARGE: 413,
  QUOTA: 429,
  LOCKED: 423,
  REMOTE: 502,
  CORRUPT: 500,
  INTERNAL: 500,
};

/** The error body every failure has. */
export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        data: { type: 'object', additionalProperties: true },
      },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

function fromFastify(e: FastifyError): { status: number; code: ErrorCode; message: string } | null {
  if (e.validation) return { status: 400, code: 'INVALID_ARGUMENT', message: `invalid request: ${e.message}` };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return {
      status: 413,
      code: 'TOO_LARGE',
      message: "the request body is over the server's limit (see --body-limit)",
    };
  }
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return { status: 400, code: 'INVALID_ARGUMENT', message: e.message };
  }
  if (e.statusCode === 400 || e instanceof SyntaxError) {
    return { status: 400, code: 'INVALID_ARGUMENT', message: `malformed request body: ${e.message}` };
  }
  return null;
}

/** Maps every error to `{"error":{code,message,data}}` with its status; internals never leak. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isStoreError(error)) {
      return reply
        .status(STATUS[error.code] ?? 500)
        .send({ error: { code: error.code, message: error.message, data: error.data } });
    }
    const known = fromFastify(error);
    if (known) return reply.status(known.status).send({ error: { code: known.code, message: known.message } });
    request.log.error(error);
    return reply
      .status(500)
      .send({ error: { code: 'INTERNAL', message: 'internal error; the server log has the details' } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        code: 'NOT_FOUND',
        message: `no route ${request.method} ${request.url.split('?')[0]}; see /v1/openapi.json`,
      },
    }),
  );
}
