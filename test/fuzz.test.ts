// The shim's C under libFuzzer, ASan and UBSan, built from the C that
// renderShim() generates (test/lib/fuzz.ts, test/fuzz/*.c): ELF reading for
// a 64-bit and a 32-bit shim, resolution inside the root (checked against the
// kernel's openat2(RESOLVE_IN_ROOT)), the ld.so.conf reader with its glob
// matcher (checked against glibc's fnmatch), and chainload's loader mapping
// (map_loader(), x86_64, checked against the file it mapped; with it the
// aarch64 shim's PT_GNU_PROPERTY parsing, loader_bti()). A bounded run: each harness for
// HOSTSHIM_FUZZ_SECONDS (default 15); any finding fails the test and names
// the saved input. `npm run fuzz` runs them longer.
//
// Then the C's ELF verdicts and resolutions on the whole corpus (seeds and
// what the fuzzer added) are compared with the TypeScript model's
// (resolveInRoot() on the same tree: where a path ends in a link to "." or
// "..", or a link's text is empty), and three bugs fixed since
// are put back into the C to show that the harnesses catch them.

import { readdir } from 'node:fs/promises'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ARCHES } from '../launcher/arch.js'
import {
  HARNESSES,
  buildHarness,
  describeRun,
  haveClang,
  inputKey,
  modelReadElfVerdict,
  modelResolveLine,
  replayResolve,
  replayReadElf,
  runFuzzer,
  writeSeeds,
  type FuzzRun,
} from './lib/fuzz.js'
import { makeScratchDir, removeScratchDir } from './lib/container.js'
import { soaking, testSeed } from './lib/seed.js'

const SECONDS = Number(process.env.HOSTSHIM_FUZZ_SECONDS ?? (soaking() ? 120 : 15))
// libFuzzer's -seed: its choice of mutations repeats (what it gets through
// in SECONDS still depends on the machine's speed; a finding is saved).
const { seed: FUZZ_SEED, how: FUZZ_SEED_HOW } = testSeed(1)
t.comment(`libFuzzer seed ${FUZZ_SEED} (${FUZZ_SEED_HOW})`)
t.setTimeout((HARNESSES.length * (SECONDS + 30) + 120) * 1000)

if (!haveClang()) {
  t.fail('clang-14 is missing: .ci/setup installs clang-14 and libclang-rt-14-dev')
} else {
  const scratch = await makeScratchDir('fuzz')
  // The resolve and ldconf harnesses make and remove thousands of files a second: tmpfs, where there is one.
  const trees = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : scratch, 'hostshim-fuzz-'))
  t.teardown(async () => {
    rmSync(trees, { recursive: true, force: true })
    await removeScratchDir(scratch)
  })
  const runs: FuzzRun[] = []

  for (const harness of HARNESSES) {
    t.test(`${harness.id}: ${SECONDS} s of libFuzzer finds nothing`, async (t) => {
      const binary = await buildHarness(harness, scratch)
      const seeds = join(scratch, `${harness.id}-seeds`)
      t.ok((await writeSeeds(harness, seeds)) > 5, 'a seed corpus')
      const run = await runFuzzer(harness, binary, {
        seconds: SECONDS,
        corpus: join(scratch, `${harness.id}-corpus`),
        seeds: [seeds],
        artifacts: join(scratch, 'artifacts'),
        scratch: trees,
        seed: FUZZ_SEED,
      })
      runs.push(run)
      t.comment(describeRun(run))
      t.equal(run.status, 0, `libFuzzer exits 0${run.status === 0 ? '' : `:\n${run.finding || run.stderr.slice(-6000)}`}`)
      t.same(run.artifacts, [], 'no crash, timeout, leak or out-of-memory input saved')
      t.ok(run.executions > 1000, `it ran: ${run.executions} inputs`)
    })
  }

  for (const harness of HARNESSES.filter((h) => h.name === 'read_elf')) {
    t.test(`${harness.id}: the C and the TypeScript model agree on every corpus input`, async (t) => {
      const binary = join(scratch, harness.id, `fuzz-${harness.id}`)
      const dirs = [join(scratch, `${harness.id}-seeds`), join(scratch, `${harness.id}-corpus`)]
      const files = (await Promise.all(dirs.map(async (d) => (await readdir(d)).map((f) => join(d, f))))).flat().sort()
      const c = replayReadElf(binary, files, join(scratch, `${harness.id}.log`))
      const arch = ARCHES[harness.arch]
      const kinds = new Map<string, number>()
      let differ = 0
      for (const file of files) {
        const bytes = readFileSync(file)
        const verdict = c.get(inputKey(bytes))
        if (verdict === undefined) {
          t.fail(`${file}: no verdict from the C`)
          continue
        }
        // The C looks for "--argv0" in every input; the model only in a loader that passed the checks.
        const mine = verdict.replace(/^(bad|wrong-arch) argv0$/, '$1')
        const model = modelReadElfVerdict(arch, bytes)
        const kind = model.split(' ')[0] as string
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
        if (mine !== model && differ++ < 5) t.fail(`${file}: C says ${JSON.stringify(mine)}, the model ${JSON.stringify(model)}`)
      }
      t.equal(differ, 0, `${files.length} inputs, no disagreement`)
      t.comment(`verdicts: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`)
      for (const kind of ['bad', 'static', 'interp']) t.ok((kinds.get(kind) ?? 0) > 0, `the corpus has "${kind}" inputs`)
    })
  }

  t.test('resolve: the C and the TypeScript model agree on every path of every corpus input', async (t) => {
    const harness = HARNESSES.find((h) => h.name === 'resolve')
    if (!harness) throw new Error('no resolve harness')
    const binary = join(scratch, harness.id, `fuzz-${harness.id}`)
    const dirs = [join(scratch, `${harness.id}-seeds`), join(scratch, `${harness.id}-corpus`)]
    const files = (await Promise.all(dirs.map(async (d) => (await readdir(d)).map((f) => join(d, f))))).flat().sort()
    const c = replayResolve(binary, files, join(scratch, `${harness.id}.log`), trees)
    const kinds = new Map<string, number>()
    let differ = 0
    let compared = 0
    for (const file of files) {
      const bytes = readFileSync(file)
      const paths = c.get(inputKey(bytes))
      if (paths === undefined) continue
      for (const [index, line] of paths) {
        const rootLength = Number(line.split(' ')[0])
        const model = modelResolveLine(bytes, index, rootLength)
        compared++
        const kind = line.split(' ')[1] === 'ok' ? `ok ${line.split(' ')[3]}` : `err ${line.split(' ')[2]}`
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
        if (model !== line && differ++ < 5) t.fail(`${file}, path ${index}: C says ${JSON.stringify(line)}, the model ${JSON.stringify(model)}`)
      }
    }
    t.equal(differ, 0, `${compared} paths of ${files.length} inputs, no disagreement`)
    t.comment(`results: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`)
    t.ok(compared > files.length, 'most inputs resolve several paths')
    for (const kind of ['ok dir', 'ok file']) t.ok((kinds.get(kind) ?? 0) > 0, `the corpus has "${kind}" results`)
  })

  t.test('the harnesses catch bugs this project had (the fixes put back)', async (t) => {
    const replaySeeds = async (id: string, mutate: (c: string) => string) => {
      const harness = HARNESSES.find((h) => h.id === id)
      if (!harness) throw new Error(id)
      const binary = await buildHarness(harness, scratch, mutate)
      return runFuzzer(harness, binary, {
        seconds: 5,
        corpus: join(scratch, `${id}-mutant-corpus`),
        seeds: [join(scratch, `${id}-seeds`)],
        artifacts: join(scratch, 'mutant-artifacts'),
        scratch: trees,
        seed: 1,
        timeoutSeconds: 3,
      })
    }
    // resolve(): the root itself written as root + "/" without a length check (a byte past out[PATH_MAX]).
    const offByOne = await replaySeeds('resolve', (c) => c.replace('if (len >= PATH_MAX - 1) {', 'if (0) {'))
    t.not(offByOne.status, 0, 'the resolve harness fails')
    t.match(offByOne.finding, /stack-buffer-overflow/, 'ASan reports the overflow')
    // match(): every "*" tries every rest of the name again, exponential in their number (the old matcher).
    const exponential = await replaySeeds('ldconf', (c) =>
      c.replace(
        '\t\tif (*p == \'*\') {\n\t\t\tstar = ++p;\n\t\t\tretry = s;\n',
        '\t\tif (*p == \'*\') {\n\t\t\tfor (++p; *s; s++)\n\t\t\t\tif (match(p, s))\n\t\t\t\t\treturn 1;\n\t\t\treturn !*p;\n',
      ),
    )
    t.not(exponential.status, 0, 'the ldconf harness fails')
    t.match(exponential.finding, /timeout after/, 'libFuzzer reports a timeout')
    // map_loader(): segments not checked against the file's size (the truncated real loader's bss memset: SIGBUS).
    const pastEnd = await replaySeeds('map_loader', (c) =>
      c.replace(' || p->p_filesz > size ||\n\t\t    p->p_offset > size - p->p_filesz)', ' || (0 && size))'),
    )
    t.not(pastEnd.status, 0, 'the map_loader harness fails')
    t.match(pastEnd.finding, /AddressSanitizer: BUS|past the file's end/, 'a SIGBUS, or the check on a segment past the end')
  })

  t.test('throughput', async (t) => {
    for (const run of runs) t.ok(run.execsPerSecond > 0, describeRun(run))
  })
}
