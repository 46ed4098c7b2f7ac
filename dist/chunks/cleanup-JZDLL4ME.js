import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a,b}from"./chunk-4OY72HQ2.js";import"./chunk-RKDCWPYA.js";import"./chunk-WAM5VTN6.js";export{b as releaseHeld,a as releaseResources};
//# sourceMappingURL=cleanup-JZDLL4ME.js.map
