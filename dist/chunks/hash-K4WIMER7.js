import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a}from"./chunk-3HZUNNU6.js";import"./chunk-WAM5VTN6.js";export{a as sha256File};
//# sourceMappingURL=hash-K4WIMER7.js.map
