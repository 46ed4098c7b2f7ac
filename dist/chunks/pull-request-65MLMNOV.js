import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{e as a,f as b}from"./chunk-JDIYYI2C.js";import"./chunk-XDP6RD4K.js";export{a as PullRequestError,b as openOrUpdatePullRequest};
