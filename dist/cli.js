#!/usr/bin/env node
import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
process.setSourceMapsEnabled(!0);var{main:e}=await import("./chunks/cli-main-5V2YFOCS.js");process.exitCode=await e(process.argv.slice(2));
//# sourceMappingURL=cli.js.map
