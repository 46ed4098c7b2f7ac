import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);
import{a,b,c,d,e,f,g}from"./chunk-B7BDBZ6P.js";import"./chunk-XDP6RD4K.js";export{c as DEFAULT_KEY_COLUMNS,d as DEFAULT_VALUE_COLUMNS,b as TableError,a as displayWidth,g as editTable,f as listedValues,e as readTables};
