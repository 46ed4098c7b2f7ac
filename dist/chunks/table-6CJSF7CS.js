import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{a,b,c,d,e,f,g,h,i,j}from"./chunk-YT6DDFT4.js";import"./chunk-WAM5VTN6.js";export{e as DEFAULT_KEY_COLUMNS,f as DEFAULT_VALUE_COLUMNS,b as TableError,a as displayWidth,i as editTable,j as editTableBytes,d as escapeMarkdown,c as escapeRst,h as listedValues,g as readTables};
//# sourceMappingURL=table-6CJSF7CS.js.map
