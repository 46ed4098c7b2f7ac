import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a as t}from"./chunk-WAM5VTN6.js";import{createHash as s}from"node:crypto";import{createReadStream as o}from"node:fs";async function n(a){let r=s("sha256");for await(let e of o(a,{highWaterMark:1<<20}))r.update(e);return r.digest("hex")}t(n,"sha256File");export{n as a};
//# sourceMappingURL=chunk-3HZUNNU6.js.map
