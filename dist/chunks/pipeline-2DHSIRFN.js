import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{a,b,c,d}from"./chunk-6DDPSTPL.js";import"./chunk-TXY5IFXZ.js";import"./chunk-HQOXUZCS.js";import"./chunk-3VCXUNZ7.js";import"./chunk-WGLNNEAO.js";import"./chunk-Z2I5YTT7.js";import"./chunk-XDP6RD4K.js";export{c as StageInputError,d as cancellationSignal,b as runPipeline,a as stepsFor};
