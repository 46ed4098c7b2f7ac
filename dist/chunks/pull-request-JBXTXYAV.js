import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{e as a,f as b}from"./chunk-HECOMSAK.js";import"./chunk-2UT2CENZ.js";import"./chunk-RKDPY4DZ.js";import"./chunk-NAE7V67D.js";import"./chunk-WAM5VTN6.js";export{a as PullRequestError,b as openOrUpdatePullRequest};
//# sourceMappingURL=pull-request-JBXTXYAV.js.map
