import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
process.setSourceMapsEnabled(!0);var{run:a}=await import("./chunks/main-7KY5WLSH.js");await a();
//# sourceMappingURL=index.js.map
