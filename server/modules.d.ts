declare module 'postgraphile/presets/amber' {
  export * from 'postgraphile/dist/presets/amber';
  export { default } from 'postgraphile/dist/presets/amber';
}
declare module 'postgraphile/grafserv/express/v4' {
  export * from 'grafserv/dist/servers/express/v4/index';
}
declare module 'postgraphile/adaptors/pg' {
  export * from '@dataplan/pg/dist/adaptors/pg';
}
