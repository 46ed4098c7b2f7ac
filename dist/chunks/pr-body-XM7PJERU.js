import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{c as u}from"./chunk-IVCFXNFI.js";import"./chunk-N2DSM7RF.js";var c=6e4,h=1e3;function $(t){let e=[`Updates the **${p(t.software)}** row of the preset images table.`,""];e.push(t.oldPath?`- Location: ${o(t.oldPath)} \u2192 ${o(t.newPath)}`:`- Location: ${o(t.newPath)} (new row)`);let s=[];t.sha256&&s.push(`- sha256: ${o(t.sha256)}`),t.size!==void 0&&s.push(`- Size: ${u(t.size)}`),t.sourceUri&&s.push(`- Source: ${o(t.sourceUri)}`),t.sourceDigest&&s.push(`- Source digest: ${o(t.sourceDigest)}`),t.buildKey&&s.push(`- Build key: ${o(t.buildKey)}`),s.length&&e.push("","### Image","",...s);let r=["","---",t.runUrl?`Opened by build-image from [this workflow run](${t.runUrl}).`:"Opened by build-image.",""],i=[],n=t.smokeMarkdown?.trim();if(n){let l=[...e,"","### Smoke test","",...r].join(`
`).length+1;i=["","### Smoke test","",d(n,c-l)]}let g=[...e,...i,...r].join(`
`);return g.length<=c?g:`${g.slice(0,c-40)}

_(description truncated)_
`}function d(t,e){if(t.length<=e)return t;let s=g=>`

_Smoke results truncated: ${g} of ${t.length} characters shown; the workflow run has them all._`,r=Math.max(0,e-s(t.length).length-8),i=t.lastIndexOf(`
`,r),n=t.slice(0,i>0?i:r);return(n.match(/^\s*(```|~~~)/gm)??[]).length%2===1&&(n+="\n```"),n+s(n.length)}function o(t){let e=a(t.replace(/\s*\n\s*/g," ")),s=Math.max(0,...(e.match(/`+/g)??[]).map(n=>n.length)),r="`".repeat(s+1),i=e.startsWith("`")||e.endsWith("`")?" ":"";return`${r}${i}${e}${i}${r}`}function p(t){return a(t.replace(/\s*\n\s*/g," ")).replace(/[\\`*_[\]<>#|~]/g,"\\$&")}function a(t){return t.length<=h?t:`${t.slice(0,h-1)}\u2026`}export{c as PR_BODY_LIMIT,$ as prBody};
