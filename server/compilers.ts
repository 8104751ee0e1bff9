import ajvCompiler from '@fastify/ajv-compiler';
import serializerCompiler from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

/**
 * Fastify's own schema compilers (Ajv for what a request carries, fast-json-stringify for JSON answers), each route's
 * code generated at its first request instead of at start-up.
 *
 * Why: compiling every route's schemas took ~210 ms of the ~730 ms of CPU that `store serve` spent before listening
 * (a `--cpu-prof` of the start). A fleet restarts servers, the CLI's tests start hundreds, and most routes of a given
 * server are never called. A route's first request pays its own compilation once (a few ms).
 *
 * The schemas are fixed in the code, and the tests call every route (each answer is checked against the OpenAPI
 * document), so a schema error still cannot reach a release.
 */
export function lazySchemaCompilers(): NonNullable<FastifyServerOptions['schemaController']> {
  const validators = ajvCompiler();
  const serializers = serializerCompiler();
  return {
    compilersFactory: {
      buildValidator: (external, options) => {
        const compile = validators(external, options);
        return (route) => {
          let validate: ReturnType<typeof compile> | undefined;
          // Fastify reads `.errors` off the function it was given after a failed validation.
          const lazy = Object.assign(
            (data: unknown) => {
              validate ??= compile(route);
              const ok = validate(data);
              lazy.errors = (validate as { errors?: unknown }).errors;
              return ok;
            },
            { errors: undefined as unknown },
          );
          return lazy as unknown as ReturnType<typeof compile>;
        };
      },
      buildSerializer: (external, options) => {
        const compile = serializers(external, options);
        return (route) => {
          let serialize: ReturnType<typeof compile> | undefined;
          return (data: unknown) => {
            serialize ??= compile(route);
            return serialize(data);
          };
        };
      },
    },
  };
}
