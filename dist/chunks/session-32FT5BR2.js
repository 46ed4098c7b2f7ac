import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a}from"./chunk-PCPRWRBQ.js";import"./chunk-43A6TDSD.js";import"./chunk-3PWJZVMZ.js";import"./chunk-XZLGJ25I.js";import"./chunk-QPOLXLRQ.js";import"./chunk-NAE7V67D.js";import"./chunk-WAM5VTN6.js";export{a as SftpSession};
//# sourceMappingURL=session-32FT5BR2.js.map
