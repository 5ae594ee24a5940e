// Imported first by bench/api.ts, before PostGraphile loads: grafast in production mode (as deployed).
process.env.GRAPHILE_ENV ??= 'production';
export {};
