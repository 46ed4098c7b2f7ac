import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{e as a,f as b,g as c,h as d,i as e}from"./chunk-MZTFLYYR.js";import"./chunk-WAM5VTN6.js";export{e as formatsSummary,c as mermaidChart,b as metricRows,a as smokeJson,d as smokeSummary};
//# sourceMappingURL=report-LG7RIG6A.js.map
