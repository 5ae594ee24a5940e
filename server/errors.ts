/**
 * Which errors reach API clients (grafserv `maskError`).
 *
 * - Errors of the engine (SQLSTATE class BP, db/ERROR_CODES.md), 42501
 *   insufficient_privilege and class 22 data exceptions (documented there as
 *   client-facing: value expressions of a model) keep their message and carry
 *   `extensions.code` = the SQLSTATE; so does 57014 (the request's
 *   statement_timeout, PGBPM_STATEMENT_TIMEOUT, expired).
 * - GraphQL's own errors (parse, validation, coercion) and grafast SafeErrors
 *   pass unchanged.
 * - Everything else is replaced by "internal error" with an error id; the
 *   original is logged with that id (and the request id, server/observability.ts).
 * - With `hideSuggestions` (production), graphql-js's "Did you mean …?" hints
 *   are cut from messages (those of validation are hidden at the source,
 *   server/limits.ts; this catches the ones raised during execution).
 */
import crypto from 'node:crypto';
import { isSafeError } from 'postgraphile/grafast';
import { GraphQLError } from 'postgraphile/graphql';
import { withoutSuggestions } from './limits';

export type ErrorLogger = (message: string, error: unknown) => void;

/** Engine errors, insufficient_privilege, data exceptions, and 57014 query_canceled (statement_timeout). */
const CLIENT_SQLSTATE = /^(BP[0-9A-Z]{3}|42501|57014|22[0-9A-Z]{3})$/;

function sqlState(error: unknown): string | null {
  if (error === null || typeof error !== 'object') return null;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/** True for a PostgreSQL error whose message and SQLSTATE the client may see. */
export function isClientSqlError(error: unknown): error is Error & { code: string } {
  const code = sqlState(error);
  return code !== null && CLIENT_SQLSTATE.test(code) && error instanceof Error;
}

export function makeMaskError(log: ErrorLogger, options: { hideSuggestions?: boolean } = {}): (error: GraphQLError) => GraphQLError {
  return (error) => {
    const original = error.originalError;
    const keep = { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: original };
    if (original == null || original instanceof GraphQLError) {
      if (!options.hideSuggestions) return error;
      const message = withoutSuggestions(error.message);
      return message === error.message ? error : new GraphQLError(message, { ...keep, extensions: error.extensions });
    }
    if (isClientSqlError(original)) {
      return new GraphQLError(original.message, { ...keep, extensions: { code: original.code } });
    }
    if (isSafeError(original)) {
      return new GraphQLError(original.message, { ...keep, extensions: original.extensions ?? {} });
    }
    const errorId = crypto.randomBytes(6).toString('hex');
    log(`internal error ${errorId}`, original);
    return new GraphQLError(`internal error (id ${errorId})`, { ...keep, extensions: { code: 'INTERNAL_SERVER_ERROR', errorId } });
  };
}
