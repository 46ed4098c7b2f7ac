import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{c as f,d}from"./chunk-TXY5IFXZ.js";import{c}from"./chunk-QPD7DMLH.js";import"./chunk-VF7C3MBO.js";import{readFile as m}from"node:fs/promises";async function w(t,g,o){let s;try{s=await m(t,"utf8")}catch(r){throw new c([{input:"FILE",message:`cannot read ${t}: ${r.code}`}])}let a={};for(let r of(g("build-args")??"").split(`
`)){let i=r.indexOf("=");i>0&&(a[r.slice(0,i).trim()]=r.slice(i+1).trim())}let n=d(s,{buildArgs:a});for(let r of n)o.write(f(t,r)+`
`);let e=n.filter(r=>r.severity==="error").length;return o.write(`${t}: ${e} error(s), ${n.length-e} warning(s)
`),e>0?1:0}export{w as lintFile};
