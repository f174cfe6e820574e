// Replaced at build time by tsup's `define` from package.json; falls back when run from source.
declare const __DIFFTX_VERSION__: string | undefined;
export const VERSION: string = typeof __DIFFTX_VERSION__ === 'string' ? __DIFFTX_VERSION__ : '0.0.0-dev';
