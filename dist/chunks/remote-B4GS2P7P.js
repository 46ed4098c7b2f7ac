import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a,b,c,d,e}from"./chunk-PNYOWTPR.js";import"./chunk-25Z3YALU.js";import"./chunk-VBCUYWZD.js";export{c as remoteError,d as remoteJoin,e as removeLeftovers,a as sftpCall,b as sftpCode};
//# sourceMappingURL=remote-B4GS2P7P.js.map
