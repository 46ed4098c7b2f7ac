import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{c as g,d as m}from"./chunk-TXY5IFXZ.js";import{c as i,d as p}from"./chunk-CUPIWR3X.js";import"./chunk-3VCXUNZ7.js";import"./chunk-XDP6RD4K.js";import{readFile as f}from"node:fs/promises";async function b(t,d,o){let s;try{s=await f(t,"utf8")}catch(r){throw new i([{input:"FILE",message:`cannot read ${t}: ${r.code}`}])}let{pairs:c,problems:a}=p(d("build-args")??"");if(a.length>0)throw new i(a.map(r=>({input:"build-args",message:r})));let e=m(s,{buildArgs:c});for(let r of e)o.write(g(t,r)+`
`);let n=e.filter(r=>r.severity==="error").length;return o.write(`${t}: ${n} error(s), ${e.length-n} warning(s)
`),n>0?1:0}export{b as lintFile};
