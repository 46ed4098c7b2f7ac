import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{b as t}from"./chunk-LC5DWBOZ.js";import{c as o}from"./chunk-GCA2GHR2.js";import"./chunk-VF7C3MBO.js";import{access as a}from"node:fs/promises";async function p(r,n){await a(r).catch(i=>{throw new o([{input:"FILE",message:`cannot read ${r}: ${i.code}`}])});let e=await t(r);return n.write(JSON.stringify(e,null,2)+`
`),0}export{p as inspectFile};
