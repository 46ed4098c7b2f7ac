import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fup } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fup(import.meta.url); const __dirname = __dn(__filename);
import{c as h}from"./chunk-O57J7DY6.js";import{a as o}from"./chunk-WAM5VTN6.js";var u=6e4,a=1e3;function f(t){let e=[`Updates the **${m(t.software)}** row of the preset images table.`,""];e.push(t.oldPath?`- Location: ${g(t.oldPath)} \u2192 ${g(t.newPath)}`:`- Location: ${g(t.newPath)} (new row)`);let s=[];t.sha256&&s.push(`- sha256: ${g(t.sha256)}`),t.size!==void 0&&s.push(`- Size: ${h(t.size)}`),t.sourceUri&&s.push(`- Source: ${g(t.sourceUri)}`),t.sourceDigest&&s.push(`- Source digest: ${g(t.sourceDigest)}`),t.buildKey&&s.push(`- Build key: ${g(t.buildKey)}`),s.length&&e.push("","### Image","",...s);let r=["","---",t.runUrl?`Opened by build-image from [this workflow run](${t.runUrl}).`:"Opened by build-image.",""],i=[],n=t.smokeMarkdown?.trim();if(n){let d=[...e,"","### Smoke test","",...r].join(`
`).length+1;i=["","### Smoke test","",p(n,u-d)]}let c=[...e,...i,...r].join(`
`);return c.length<=u?c:`${c.slice(0,u-40)}

_(description truncated)_
`}o(f,"prBody");function p(t,e){if(t.length<=e)return t;let s=o(c=>`

_Smoke results truncated: ${c} of ${t.length} characters shown; the workflow run has them all._`,"note"),r=Math.max(0,e-s(t.length).length-8),i=t.lastIndexOf(`
`,r),n=t.slice(0,i>0?i:r);return(n.match(/^\s*(```|~~~)/gm)??[]).length%2===1&&(n+="\n```"),n+s(n.length)}o(p,"fit");function g(t){let e=l(t.replace(/\s*\n\s*/g," ")),s=Math.max(0,...(e.match(/`+/g)??[]).map(n=>n.length)),r="`".repeat(s+1),i=e.startsWith("`")||e.endsWith("`")?" ":"";return`${r}${i}${e}${i}${r}`}o(g,"code");function m(t){return l(t.replace(/\s*\n\s*/g," ")).replace(/[\\`*_[\]<>#|~]/g,"\\$&")}o(m,"inline");function l(t){return t.length<=a?t:`${t.slice(0,a-1)}\u2026`}o(l,"clip");export{u as PR_BODY_LIMIT,f as prBody};
//# sourceMappingURL=pr-body-6CXDTU3K.js.map
