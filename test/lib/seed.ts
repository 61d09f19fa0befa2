// Seeds for randomised tests: the same on every run unless asked otherwise,
// and always printed, so a failure can be rerun exactly.
//
//   (nothing)              each suite's fixed default seed: `npm test` is
//                          reproducible, a red run stays red
//   HOSTSHIM_TEST_SEED=N   every suite uses N (rerun a printed soak seed)
//   HOSTSHIM_SOAK=1        every suite draws a new seed (`npm run soak`:
//                          long runs that look for what the defaults miss)
//
// A suite may also keep an override of its own (HOSTSHIM_DIFF_SEED); it wins.
// fast-check gets the seed through fc.configureGlobal, libFuzzer through -seed.

import { randomInt } from 'node:crypto'
import fc from 'fast-check'
import type { Test } from 'tap'

export const SEED_ENV = 'HOSTSHIM_TEST_SEED'
export const SOAK_ENV = 'HOSTSHIM_SOAK'

/** True when randomised suites should draw new seeds and run longer. */
export function soaking(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env[SOAK_ENV]) && env[SOAK_ENV] !== '0'
}

function parseSeed(name: string, value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) >= 2 ** 31) throw new Error(`${name}=${JSON.stringify(value)}: a seed is an integer from 0 to 2^31-1`)
  return Number(value)
}

/**
 * The seed for one suite: `override` (a suite's own variable, by name),
 * then HOSTSHIM_TEST_SEED, then a new one when soaking, else `fixed`.
 */
export function testSeed(fixed: number, override?: string, env: NodeJS.ProcessEnv = process.env): { seed: number; how: string } {
  const own = override === undefined ? undefined : env[override]
  if (own !== undefined && own !== '') return { seed: parseSeed(override as string, own), how: `from ${override}` }
  const all = env[SEED_ENV]
  if (all !== undefined && all !== '') return { seed: parseSeed(SEED_ENV, all), how: `from ${SEED_ENV}` }
  if (soaking(env)) return { seed: randomInt(2 ** 31), how: `drawn (${SOAK_ENV}); rerun with ${SEED_ENV}=N` }
  return { seed: fixed, how: `the fixed default; ${SOAK_ENV}=1 draws new ones` }
}

/**
 * Seed fast-check for this test file (every fc.assert and fc.sample without
 * its own seed) and print the seed. Returns it, for properties that derive
 * their own seeds from it.
 */
export function seedFastCheck(t: Test, fixed: number): number {
  const { seed, how } = testSeed(fixed)
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed })
  t.comment(`fast-check seed ${seed} (${how})`)
  return seed
}
