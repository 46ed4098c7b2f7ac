import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a as t}from"./chunk-WAM5VTN6.js";function r(n){return n!==""&&/^[A-Za-z0-9_@%+=:,./-]+$/.test(n)?n:`'${n.replace(/'/g,"'\\''")}'`}t(r,"shellQuote");function i(n,e){return[n,...e].map(r).join(" ")}t(i,"commandLine");export{r as a,i as b};
//# sourceMappingURL=chunk-QFYUGUHY.js.map
