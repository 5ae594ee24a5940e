/**
 * Limits on what one GraphQL request may ask for, checked before execution
 * (nothing reaches the database when a limit is exceeded):
 *
 * - QueryLimitsRule (validation, cached by grafserv with the parsed document):
 *   selection-set depth, number of field selections (fragments expanded,
 *   aliases counted: the cost of a query grows with both), and literal
 *   `first`/`last` arguments above the page-size limit;
 * - QueryLimitsPlugin also checks `first`/`last` given as variables (grafast
 *   `execute` and `subscribe` middleware: the values are known only per
 *   request; WebSocket operations pass the same rules) and, in
 *   production, hides graphql-js's "Did you mean …?" suggestions during
 *   validation (`hideSuggestions` of graphql 16.10+);
 * - createRateLimiter: a token bucket per tenant, in memory (one process).
 *
 * Rejections are ordinary GraphQL errors with `extensions.code`
 * QUERY_TOO_DEEP, QUERY_TOO_COMPLEX or PAGE_SIZE_TOO_LARGE.
 */
import {
  GraphQLError,
  Kind,
  getOperationAST,
  type ASTNode,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  type ValueNode,
} from 'postgraphile/graphql';

export interface QueryLimits {
  maxDepth: number;
  maxFields: number;
  maxPageSize: number;
}

const PAGE_ARGUMENTS = new Set(['first', 'last']);

interface Measure {
  depth: number;
  fields: number;
}

/**
 * Depth and field count of an operation, fragments expanded, not counting
 * what is below introspection fields. Stops early once
 * a limit is exceeded (fragment spreads can multiply the work exponentially),
 * and ignores fragment cycles (NoFragmentCyclesRule reports them).
 */
function measure(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>, limits: QueryLimits): Measure {
  const result: Measure = { depth: 0, fields: 0 };
  const active = new Set<string>();
  const exceeded = (): boolean => result.depth > limits.maxDepth || result.fields > limits.maxFields;
  const walk = (selectionSet: SelectionSetNode, depth: number): void => {
    if (depth > result.depth) result.depth = depth;
    for (const selection of selectionSet.selections) {
      if (exceeded()) return;
      if (selection.kind === Kind.FIELD) {
        result.fields++;
        // introspection (__schema, __type: GraphiQL's query nests deeply) is not limited here;
        // production rejects it altogether
        if (selection.selectionSet && !selection.name.value.startsWith('__')) walk(selection.selectionSet, depth + 1);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet, depth);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || active.has(name)) continue;
        active.add(name);
        walk(fragment.selectionSet, depth);
        active.delete(name);
      }
    }
  };
  walk(operation.selectionSet, 1);
  return result;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

function pageSizeError(name: string, value: number, max: number, node?: ASTNode): GraphQLError {
  return new GraphQLError(`\`${name}\` must not exceed ${max} (got ${value})`, {
    nodes: node,
    extensions: { code: 'PAGE_SIZE_TOO_LARGE' },
  });
}

/** graphql-js validation rule: depth, field count and literal first/last. */
export function makeQueryLimitsRule(limits: QueryLimits): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    let fragments: Map<string, FragmentDefinitionNode> | undefined;
    return {
      OperationDefinition(node) {
        fragments ??= fragmentsOf(context.getDocument());
        const { depth, fields } = measure(node, fragments, limits);
        if (depth > limits.maxDepth) {
          context.reportError(
            new GraphQLError(`query is too deep: selections may nest at most ${limits.maxDepth} levels`, {
              nodes: node,
              extensions: { code: 'QUERY_TOO_DEEP', maxDepth: limits.maxDepth },
            }),
          );
        } else if (fields > limits.maxFields) {
          context.reportError(
            new GraphQLError(`query is too complex: at most ${limits.maxFields} field selections (fragments expanded) are allowed`, {
              nodes: node,
              extensions: { code: 'QUERY_TOO_COMPLEX', maxFields: limits.maxFields },
            }),
          );
        }
      },
      Argument(node) {
        if (!PAGE_ARGUMENTS.has(node.name.value) || node.value.kind !== Kind.INT) return;
        const value = Number(node.value.value);
        if (value > limits.maxPageSize) context.reportError(pageSizeError(node.name.value, value, limits.maxPageSize, node.value));
      },
    };
  };
}

/** Variables used as `first`/`last` in a document (cached per document: grafserv caches parsed documents). */
const pageVariablesCache = new WeakMap<DocumentNode, Map<string, string>>();

function pageVariables(document: DocumentNode): Map<string, string> {
  let found = pageVariablesCache.get(document);
  if (found) return found;
  found = new Map();
  const stack: unknown[] = [document];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      stack.push(...(node as unknown[]));
      continue;
    }
    const n = node as { kind?: string; name?: { value: string }; value?: ValueNode };
    if (n.kind === Kind.ARGUMENT && n.name && PAGE_ARGUMENTS.has(n.name.value) && n.value?.kind === Kind.VARIABLE) {
      found.set(n.value.name.value, n.name.value);
      continue;
    }
    for (const [key, child] of Object.entries(node)) {
      if (key !== 'loc' && child !== null && typeof child === 'object') stack.push(child);
    }
  }
  pageVariablesCache.set(document, found);
  return found;
}

/** The first `first`/`last` variable (with its default) over the limit, as an error. */
export function checkPageVariables(
  document: DocumentNode,
  operationName: string | null | undefined,
  variableValues: Record<string, unknown> | null | undefined,
  maxPageSize: number,
): GraphQLError | null {
  const used = pageVariables(document);
  if (used.size === 0) return null;
  const operation = getOperationAST(document, operationName);
  for (const definition of operation?.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const argument = used.get(name);
    if (!argument) continue;
    let value: unknown = variableValues?.[name];
    if (value === undefined && definition.defaultValue?.kind === Kind.INT) value = Number(definition.defaultValue.value);
    if (typeof value === 'number' && value > maxPageSize) return pageSizeError(argument, value, maxPageSize, definition);
  }
  return null;
}

/** A validation rule that only switches graphql-js's suggestions off ("Did you mean …?"). */
export const HideSuggestionsRule: ValidationRule = (context) => {
  Object.defineProperty(context, 'hideSuggestions', { value: true, configurable: true });
  return {};
};

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/** A message without graphql-js's suggestions (for errors raised during execution, e.g. variable coercion). */
export function withoutSuggestions(message: string): string {
  return message.replace(SUGGESTION, '');
}

export function makeQueryLimitsPlugin(limits: QueryLimits, options: { hideSuggestions: boolean }): GraphileConfig.Plugin {
  const rule = makeQueryLimitsRule(limits);
  return {
    name: 'PgbpmQueryLimitsPlugin',
    version: '0.1.0',
    description: 'Rejects too deep or too complex queries and oversized pages before execution; hides suggestions in production',
    grafserv: {
      middleware: {
        setPreset(next, event) {
          // first, so that the hideSuggestions flag is set before any rule builds its messages
          if (options.hideSuggestions) event.validationRules.unshift(HideSuggestionsRule);
          event.validationRules.push(rule);
          return next();
        },
      },
    },
    grafast: {
      middleware: {
        execute(next, event) {
          const { document, operationName, variableValues } = event.args;
          const error = checkPageVariables(document, operationName, variableValues, limits.maxPageSize);
          if (error) return { errors: [error] };
          return next();
        },
        // subscriptions (WebSocket) select connections too
        subscribe(next, event) {
          const { document, operationName, variableValues } = event.args;
          const error = checkPageVariables(document, operationName, variableValues, limits.maxPageSize);
          if (error) return { errors: [error] };
          return next();
        },
      },
    },
  };
}

export interface RateLimiter {
  /** Takes a token for `key`; returns 0 when allowed, else the seconds until a token is available. */
  take(key: string): number;
}

/**
 * A token bucket per key: `rate` tokens per second, at most `burst`. Full
 * buckets are forgotten (when the map grows), so idle tenants cost nothing.
 */
export function createRateLimiter(rate: number, burst: number, now: () => number = () => performance.now()): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const MAX_KEYS = 10_000;
  return {
    take(key) {
      const t = now();
      let bucket = buckets.get(key);
      if (!bucket) {
        if (buckets.size >= MAX_KEYS) {
          for (const [k, b] of buckets) {
            if (b.tokens + ((t - b.at) / 1000) * rate >= burst) buckets.delete(k);
          }
        }
        bucket = { tokens: burst, at: t };
        buckets.set(key, bucket);
      } else {
        bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * rate);
        bucket.at = t;
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return 0;
      }
      return (1 - bucket.tokens) / rate;
    },
  };
}
