// The tool's version: package.json's, written in by the bundler (scripts/bundle.mjs); `dev` when run from source.
declare const BUILD_IMAGE_VERSION: string | undefined;

export const VERSION: string = typeof BUILD_IMAGE_VERSION === 'string' ? BUILD_IMAGE_VERSION : 'dev';
