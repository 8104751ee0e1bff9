import type { FastifyError, FastifyInstance } from 'fastify';
import { errorBody } from '../src/http/contract.js';
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
      return reply.status(STATUS[error.code] ?? 500).send(errorBody(error.code, error.message, error.data));
    }
    const known = fromFastify(error);
    if (known) return reply.status(known.status).send(errorBody(known.code, known.message));
    request.log.error(error);
    return reply.status(500).send(errorBody('INTERNAL', 'internal error; the server log has the details'));
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}; see /v1/openapi.json`)),
  );
}
