import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{a as t}from"./chunk-HQOXUZCS.js";import{c as o}from"./chunk-CUPIWR3X.js";import"./chunk-3VCXUNZ7.js";import"./chunk-XDP6RD4K.js";import{access as a}from"node:fs/promises";async function p(r,n){await a(r).catch(i=>{throw new o([{input:"FILE",message:`cannot read ${r}: ${i.code}`}])});let e=await t(r);return n.write(JSON.stringify(e,null,2)+`
`),0}export{p as inspectFile};
