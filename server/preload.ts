/**
 * Loaded before PostGraphile (first import of server/app.ts).
 *
 * 1. GRAPHILE_ENV: grafast reads it when it loads and warns when it is unset.
 *    Default: "production" when NODE_ENV is production, else "development"
 *    (grafast's extra checks and readable errors while developing).
 *
 * 2. PostGraphile v5 (grafast, grafserv) declares Node.js >= 22 and calls
 * `Promise.withResolvers()` (ES2024), which Node.js 20 lacks. pgbpm supports
 * Node.js 20.19+, so the server installs this standard-conforming fallback
 * before it loads PostGraphile. Nothing else of Node 22 is needed on the
 * server side (checked for PostGraphile 5.1).
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

type PromiseWithResolvers = PromiseConstructor & { withResolvers?: <T>() => Resolvers<T> };

export function installPolyfills(): void {
  const P = Promise as PromiseWithResolvers;
  if (typeof P.withResolvers === 'function') return;
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve'];
      let reject!: Resolvers<T>['reject'];
      const promise = new this<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

installPolyfills();

if (!process.env.GRAPHILE_ENV) {
  process.env.GRAPHILE_ENV = process.env.NODE_ENV === 'production' ? 'production' : 'development';
}
