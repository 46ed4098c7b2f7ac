import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a,b,c,d,e,f,g,h,i,j}from"./chunk-UJRU42HY.js";import"./chunk-VBCUYWZD.js";export{c as DEFAULT_KEY_COLUMNS,d as DEFAULT_VALUE_COLUMNS,b as TableError,a as displayWidth,i as editTable,j as editTableBytes,h as escapeMarkdown,g as escapeRst,f as listedValues,e as readTables};
//# sourceMappingURL=table-OCMJ3KVR.js.map
