// `npm run fuzz`: run the shim's libFuzzer harnesses for longer than the
// bounded run in `npm test` (test/fuzz.test.ts), keeping the corpus.
//
//   npm run fuzz                         every harness, 300 s each
//   npm run fuzz -- --seconds 3600       an hour each
//   npm run fuzz -- --only resolve       one harness (ids: read_elf-x86_64,
//                                        read_elf-i686, resolve, ldconf,
//                                        map_loader)
//   npm run fuzz -- --corpus DIR         keep the corpus here (default out/fuzz)
//   HOSTSHIM_FUZZ_SECONDS=N npm run fuzz the same as --seconds N
//
// Each harness is built from the C that renderShim() generates now. Exit
// status 1 when any harness found something: its input is saved under
// CORPUS/artifacts/ and the report is printed; rerun the harness binary on
// that file to reproduce (the command is printed too).
//
// Not a test file (test/fuzz.test.ts is): it does nothing when TAP is set,
// should a tap run ever pick it up.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { HARNESSES, buildHarness, describeRun, haveClang, runFuzzer, writeSeeds } from '../lib/fuzz.js'

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: process.env.HOSTSHIM_FUZZ_SECONDS ?? '300' },
      only: { type: 'string', multiple: true },
      corpus: { type: 'string', default: 'out/fuzz' },
      seed: { type: 'string' },
    },
  })
  const seconds = Number(values.seconds)
  if (!Number.isInteger(seconds) || seconds < 1) {
    console.error(`fuzz: --seconds must be a positive integer, got ${JSON.stringify(values.seconds)}`)
    return 2
  }
  const chosen = HARNESSES.filter((h) => !values.only || values.only.includes(h.id) || values.only.includes(h.name))
  if (chosen.length === 0) {
    console.error(`fuzz: no harness matches ${JSON.stringify(values.only)}; ids: ${HARNESSES.map((h) => h.id).join(', ')}`)
    return 2
  }
  if (!haveClang()) {
    console.error('fuzz: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev, or set HOSTSHIM_CLANG)')
    return 2
  }
  const corpusRoot = resolve(values.corpus)
  const work = await mkdtemp(join(tmpdir(), 'hostshim-fuzz-'))
  // tmpfs for the harnesses' trees when there is one: they make and remove thousands per second.
  const scratch = await mkdtemp(join(process.platform === 'linux' ? '/dev/shm' : tmpdir(), 'hostshim-fuzz-'))
  let failed = 0
  try {
    for (const harness of chosen) {
      const binary = await buildHarness(harness, work)
      const seeds = join(work, `${harness.id}-seeds`)
      await writeSeeds(harness, seeds)
      console.log(`${harness.id}: fuzzing for ${seconds} s (corpus ${join(corpusRoot, harness.id)})`)
      const run = await runFuzzer(harness, binary, {
        seconds,
        corpus: join(corpusRoot, harness.id),
        seeds: [seeds],
        artifacts: join(corpusRoot, 'artifacts'),
        scratch,
        ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
      })
      console.log(describeRun(run))
      if (run.status !== 0 || run.artifacts.length > 0) {
        failed++
        console.log(run.finding || run.stderr.slice(-8000))
        for (const a of run.artifacts) console.log(`reproduce: HOSTSHIM_FUZZ_DIR=/tmp ${binary} ${a}`)
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
    // The binaries stay for reproducing a finding; they are small.
    if (failed === 0) await rm(work, { recursive: true, force: true })
  }
  return failed === 0 ? 0 : 1
}

if (!process.env.TAP) process.exitCode = await main()
