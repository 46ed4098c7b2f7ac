import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a,b,c,d,e,f,g}from"./chunk-H33EJCSN.js";import"./chunk-MQYAEUEK.js";import"./chunk-7MLCBVIQ.js";import"./chunk-WAM5VTN6.js";export{f as readSmallFile,c as remoteError,d as remoteJoin,e as removeLeftovers,g as replaceSmallFile,a as sftpCall,b as sftpCode};
//# sourceMappingURL=remote-ORHROG3H.js.map
