import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a,b,c,d}from"./chunk-3PWJZVMZ.js";import"./chunk-XZLGJ25I.js";import"./chunk-QPOLXLRQ.js";import"./chunk-NAE7V67D.js";import"./chunk-WAM5VTN6.js";export{a as HostKeyError,b as SftpError,d as connectSftp,c as isNetworkError};
//# sourceMappingURL=connect-OICAUUQD.js.map
