import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{b as a,c as b,d as c}from"./chunk-RTHRJGQA.js";import"./chunk-NAE7V67D.js";import"./chunk-WAM5VTN6.js";export{a as CommandNotFoundError,c as findExecutable,b as runProcess};
//# sourceMappingURL=process-5T3D3US5.js.map
