/**
 * Which errors reach API clients (grafserv `maskError`).
 *
 * - Errors of the engine (SQLSTATE class BP, db/ERROR_CODES.md), 42501
 *   insufficient_privilege and class 22 data exceptions (documented there as
 *   client-facing: value expressions of a model) keep their message and carry
 *   `extensions.code` = the SQLSTATE; so does 57014 (the request's
 *   statement_timeout, PGBPM_STATEMENT_TIMEOUT, expired), and the transient
 *   40001 / 40P01 (serialization failure, deadlock: the call changed nothing;
 *   retry it).
 * - The database being unreachable or going away mid-request (connection
 *   refused or cut, the server shutting down, crashed or starting up, no
 *   connection slot) becomes `DATABASE_UNAVAILABLE`, with an error id that
 *   is logged: retry later. A mutation cut off while it committed may or may
 *   not have been applied.
 * - GraphQL's own errors (parse, validation, coercion) and grafast SafeErrors
 *   pass unchanged.
 * - Everything else is replaced by "internal error" with an error id; the
 *   original is logged with that id (and the request id, server/observability.ts).
 * - With `hideSuggestions` (production), graphql-js's "Did you mean …?" hints
 *   are cut from messages (those of validation are hidden at the source,
 *   server/limits.ts; this catches the ones raised during execution).
 */
import crypto from 'node:crypto';
import { types } from 'node:util';
import { isSafeError } from 'postgraphile/grafast';
import { GraphQLError } from 'postgraphile/graphql';
import { withoutSuggestions } from './limits';

export type ErrorLogger = (message: string, error: unknown) => void;

/** Engine errors, insufficient_privilege, data exceptions, 57014 query_canceled (statement_timeout), 40001 and 40P01. */
const CLIENT_SQLSTATE = /^(BP[0-9A-Z]{3}|42501|57014|22[0-9A-Z]{3}|40001|40P01)$/;

/** Class 08 connection exceptions; 57P01–57P03 admin/crash shutdown, cannot connect now; 53300 too many connections. */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
/** Socket errors of the driver (`err.code` is the errno name). */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** What pg and pg-pool say when a connection ends, breaks or cannot be had in time. */
const UNAVAILABLE_MESSAGE = /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Connection ended unexpectedly)/;

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

/** True when `error` says the database could not be reached or the connection broke (not what the request asked). */
export function isDatabaseUnavailable(error: unknown): boolean {
  // (isNativeError: socket errors come from node's own realm, where `instanceof Error` of a sandbox, as jest's, fails)
  if (!types.isNativeError(error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
  return UNAVAILABLE_MESSAGE.test(error.message);
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
    if (isDatabaseUnavailable(original)) {
      log(`database unavailable ${errorId}`, original);
      return new GraphQLError(`database unavailable (id ${errorId}): retry later; a mutation cut off while it committed may or may not have been applied`, {
        ...keep,
        extensions: { code: 'DATABASE_UNAVAILABLE', errorId },
      });
    }
    log(`internal error ${errorId}`, original);
    return new GraphQLError(`internal error (id ${errorId})`, { ...keep, extensions: { code: 'INTERNAL_SERVER_ERROR', errorId } });
  };
}
