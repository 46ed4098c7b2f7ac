import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a as e}from"./chunk-WAM5VTN6.js";var s=class extends Error{static{e(this,"UserError")}};export{s as a};
//# sourceMappingURL=chunk-7MLCBVIQ.js.map
