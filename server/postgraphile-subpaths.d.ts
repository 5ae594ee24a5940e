/**
 * Type-only bridge for PostGraphile v5's subpath exports.
 *
 * The project compiles with `moduleResolution: "node"` (CommonJS), which does
 * not read package.json "exports", so TypeScript cannot find the types of
 * `postgraphile/presets/amber` & co. on its own. Node resolves them at run time
 * through "exports" as usual; these declarations only tell TypeScript which
 * declaration files those subpaths forward to (the same ones "exports" names).
 * No runtime code is involved.
 */
declare module 'postgraphile/presets/amber' {
  export * from 'postgraphile/dist/presets/amber';
}
declare module 'postgraphile/grafserv/express/v4' {
  export * from 'grafserv/dist/servers/express/v4/index';
}
declare module 'postgraphile/adaptors/pg' {
  export * from '@dataplan/pg/dist/adaptors/pg';
}
declare module 'postgraphile/utils' {
  export * from 'graphile-utils';
}
declare module 'postgraphile/@dataplan/pg' {
  export * from '@dataplan/pg';
}
declare module 'postgraphile/grafast' {
  export * from 'grafast';
}
declare module 'postgraphile/grafserv' {
  export * from 'grafserv';
}
declare module 'postgraphile/graphql' {
  export * from 'graphql';
}
