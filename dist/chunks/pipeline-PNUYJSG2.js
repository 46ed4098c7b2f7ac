import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{a,b}from"./chunk-ELIJ7GVM.js";import"./chunk-34WDPNDR.js";import"./chunk-TXY5IFXZ.js";import"./chunk-LC5DWBOZ.js";import"./chunk-VF7C3MBO.js";export{b as cancellationSignal,a as runPipeline};
