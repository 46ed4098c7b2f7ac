import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a as s}from"./chunk-WAM5VTN6.js";var t=class extends Error{static{s(this,"UserError")}},e=class extends t{constructor(r,o){super(`${r}: ${o}`);this.input=r;this.name="StageInputError"}input;static{s(this,"StageInputError")}};export{t as a,e as b};
//# sourceMappingURL=chunk-NAE7V67D.js.map
