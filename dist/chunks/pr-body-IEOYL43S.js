import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{c as o}from"./chunk-O57J7DY6.js";import{a as g}from"./chunk-WAM5VTN6.js";var c=6e4,u=1e3;function b(t){let e=[`Updates the **${m(t.software)}** row of the preset images table.`,""];e.push(t.oldPath?`- Location: ${r(t.oldPath)} \u2192 ${r(t.newPath)}`:`- Location: ${r(t.newPath)} (new row)`),t.sqsh&&e.push(`- enroot image (\`srun --container-image\`): ${r(t.sqsh.path)}${t.sqsh.sha256?`, sha256 ${r(t.sqsh.sha256)}`:""}`);let s=[];t.sha256&&s.push(`- sha256: ${r(t.sha256)}`),t.size!==void 0&&s.push(`- Size: ${o(t.size)}`),t.sourceUri&&s.push(`- Source: ${r(t.sourceUri)}`),t.sourceDigest&&s.push(`- Source digest: ${r(t.sourceDigest)}`),t.buildKey&&s.push(`- Build key: ${r(t.buildKey)}`),s.length&&e.push("","### Image","",...s);let i=["","---",t.runUrl?`Opened by build-image from [this workflow run](${t.runUrl}).`:"Opened by build-image.",""],h=[],n=t.smokeMarkdown?.trim();if(n){let p=[...e,"","### Smoke test","",...i].join(`
`).length+1;h=["","### Smoke test","",d(n,c-p)]}let a=[...e,...h,...i].join(`
`);return a.length<=c?a:`${a.slice(0,c-40)}

_(description truncated)_
`}g(b,"prBody");function d(t,e){if(t.length<=e)return t;let s=g(a=>`

_Smoke results truncated: ${a} of ${t.length} characters shown; the workflow run has them all._`,"note"),i=Math.max(0,e-s(t.length).length-8),h=t.lastIndexOf(`
`,i),n=t.slice(0,h>0?h:i);return(n.match(/^\s*(```|~~~)/gm)??[]).length%2===1&&(n+="\n```"),n+s(n.length)}g(d,"fit");function r(t){let e=l(t.replace(/\s*\n\s*/g," ")),s=Math.max(0,...(e.match(/`+/g)??[]).map(n=>n.length)),i="`".repeat(s+1),h=e.startsWith("`")||e.endsWith("`")?" ":"";return`${i}${h}${e}${h}${i}`}g(r,"code");function m(t){return l(t.replace(/\s*\n\s*/g," ")).replace(/[\\`*_[\]<>#|~]/g,"\\$&")}g(m,"inline");function l(t){return t.length<=u?t:`${t.slice(0,u-1)}\u2026`}g(l,"clip");export{c as PR_BODY_LIMIT,b as prBody};
//# sourceMappingURL=pr-body-IEOYL43S.js.map
