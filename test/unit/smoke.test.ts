import { describe, expect, test } from '@jest/globals';
describe('toolchain', () => { test('runs ESM TypeScript', () => { expect(1 + 1).toBe(2); }); });
