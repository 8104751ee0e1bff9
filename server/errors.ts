import type { FastifyError, FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify';
import { GIT_PATH } from '../src/http/contract.js';
import { ERROR_CODES, type ErrorCode, errorBody, errorBodyOf, isStoreError, statusOf } from '../src/index.js';

// Statuses come from the one table in src/errors.ts (`statusOf`): there is no second table here.

/** fastify's own errors (validation, body parsing) as store error codes; their status comes from the table. */
function fromFastify(e: FastifyError, request: FastifyRequest): { code: ErrorCode; message: string } | null {
  if (e.validation) return { code: 'INVALID_ARGUMENT', message: `invalid request: ${e.message}` };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const option = request.url.startsWith(`${GIT_PATH}/`) ? '--git-body-limit' : '--body-limit';
    const limit = request.routeOptions.bodyLimit;
    return {
      code: 'TOO_LARGE',
      message: `the request body is over the server's limit of ${limit} bytes (${option})`,
    };
  }
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return { code: 'INVALID_ARGUMENT', message: e.message };
  }
  if (e.statusCode === 400 || e instanceof SyntaxError) {
    return { code: 'INVALID_ARGUMENT', message: `malformed request body: ${e.message}` };
  }
  return null;
}

/** Maps every error to `{"error":{code,message,data}}` with its status; internals never leak. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isStoreError(error)) {
      // CORRUPT (and any StoreError answered 5xx) is the operator's to see, with its stack, like an unexpected error.
      if (statusOf(error.code) >= 500) request.log.error(error);
      return reply.status(statusOf(error.code)).send(errorBodyOf(error, ''));
    }
    const known = fromFastify(error, request);
    if (known) {
      return reply.status(statusOf(known.code)).send(errorBody(known.code, known.message));
    }
    request.log.error(error);
    return reply
      .status(statusOf('INTERNAL'))
      .send(errorBodyOf(error, 'internal error; the server log has the details'));
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(statusOf('NOT_FOUND'))
      .send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}; see /v1/openapi.json`)),
  );
}

/** Every error code with its HTTP status, from the one table (src/errors.ts): for the OpenAPI document. */
export const STATUS = Object.fromEntries(ERROR_CODES.map((code) => [code, statusOf(code)])) as Record<
  ErrorCode,
  number
>;

/**
 * Errors fastify raises before routing (a URL with malformed percent-encoding), in the API's error shape: without
 * this they answered fastify's own body, which the OpenAPI document does not describe.
 */
export const frameworkErrors: NonNullable<FastifyServerOptions['frameworkErrors']> = (error, _request, reply) => {
  const raw = reply as unknown as { status(code: number): { send(body: unknown): void } };
  raw.status(statusOf('INVALID_ARGUMENT')).send(errorBody('INVALID_ARGUMENT', `malformed request: ${error.message}`));
};
