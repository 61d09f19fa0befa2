// The plan model against the real shim over random host trees.
//
// Each tree (test/lib/randomtree.ts) is made on disk, planned by
// launcher/plan.ts, and run with the compiled shim in a bwrap container with
// the tree at /run/host (container mode) and, for some, with the tree as "/"
// (host mode), once with an exec-mode shim and once with a chainload-mode
// one. With the debug variable set, the shim's stderr must be the model's
// bytes: the debug lines and then what the exec'd program did (the fake
// loaders cannot run: "cannot execute ...", 126, test/lib/hosttree.ts
// fakeLoaderOutcome; static targets are busybox: "NAME: applet not found",
// 127), or the one line of a failure and its exit code. The debug lines and
// how the run ends are counted apart, so that one wrong ending does not hide
// the debug output of the other trees.
//
// The trees come from a fixed seed (printed): every run of `npm test` plans
// and runs the same trees. HOSTSHIM_DIFF_SEED=N (or HOSTSHIM_TEST_SEED=N)
// runs the trees of seed N; HOSTSHIM_SOAK=1 (`npm run soak`) draws a new
// seed each run, and 4 times the trees; HOSTSHIM_DIFF_TREES=N sets how many
// (default 240). The first trees of every run have some choices pinned
// (PINNED below), so the mix the suite asserts (each kind of failure, runs
// through the loader, static targets, host mode) holds for any seed.

import { readFileSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import t from 'tap'
import type { ShimConfig, ShimMode } from '../../launcher/config.js'
import { readElf, toHostBytes, type Mode, type Plan } from '../../launcher/plan.js'
import { ARCHES } from '../../launcher/arch.js'
import { BWRAP, HOST_ROOT, assertNoStrayMounts, makeBusyboxRoot, runHost } from '../lib/container.js'
import { memoryFile } from '../lib/fuzz.js'
import { buildTree, copyRealFiles, fakeLoaderOutcome, planTree, shimConfig, type RealFiles } from '../lib/hosttree.js'
import { describeEntry, randomTree, type RandomTree, type ShimChoice, type TreePin } from '../lib/randomtree.js'
import { soaking, testSeed } from '../lib/seed.js'
import { COMPILE_TIMEOUT_MS, MODES, buildShim, suiteScratch, type ShimFields } from '../lib/shims.js'
import { debugEnv, expectedOutput, runShim } from '../lib/shimrun.js'

const { seed: SEED, how: SEED_HOW } = testSeed(283559001, 'HOSTSHIM_DIFF_SEED')
const TREES = Number(process.env.HOSTSHIM_DIFF_TREES ?? (soaking() ? 960 : 240))
t.comment(`seed ${SEED} (${SEED_HOW}), ${TREES} trees`)

/**
 * The first trees of a run: one of each failure kind the suite asserts, a
 * run through the loader, a static target, and host mode for the first
 * two. Tree i takes PINNED[i] (the rest of it is still its seed's).
 */
const PINNED: readonly { pin: TreePin; kind: string }[] = [
  { pin: { loader: 'fake', target: 'dynamic', via: 'file', hostMode: true }, kind: 'container: via the loader' },
  { pin: { target: 'static', via: 'file', hostMode: true }, kind: 'container: direct exec' },
  { pin: { target: 'missing' }, kind: 'container: targetMissing ENOENT' },
  { pin: { target: 'broken', broken: 'not-elf', via: 'file' }, kind: 'container: targetBad ENOEXEC' },
  { pin: { target: 'broken', broken: 'foreign', via: 'file' }, kind: 'container: wrongArch ENOEXEC' },
  { pin: { loader: 'missing', target: 'dynamic' }, kind: 'container: loaderMissing ENOENT' },
  { pin: { loader: 'not-elf', target: 'dynamic' }, kind: 'container: loaderBad ENOEXEC' },
]
t.setTimeout(COMPILE_TIMEOUT_MS + MODES.length * TREES * 2000)

const scratch = await suiteScratch(t, 'differential')
const real: RealFiles = copyRealFiles(join(scratch, 'real'))
const root = await makeBusyboxRoot(join(scratch, 'root'))

const FIELDS: Readonly<Record<ShimChoice, ShimFields>> = {
  toolbox: { name: 'toolbox', target: '/usr/bin/toolbox', libDirs: ['/opt/vendor/lib', '/usr/lib/extra'] },
  tb: { name: 'tb', target: '/usr/libexec/toolbox/toolbox', argv0: false, env: { TB: '1' } },
}
type Shims = Record<ShimChoice, { path: string; config: ShimConfig }>
const shims = {} as Record<ShimMode, Shims>
for (const mode of MODES) {
  shims[mode] = {
    toolbox: { path: await buildShim(FIELDS.toolbox, mode), config: shimConfig({ ...FIELDS.toolbox, mode }) },
    tb: { path: await buildShim(FIELDS.tb, mode), config: shimConfig({ ...FIELDS.tb, mode }) },
  }
}
const busyboxIno = statSync(real.busybox).ino

/** Where the shim sits in host mode: a file in the tree itself (made before planning, so both see it). */
const HOST_AT = (name: string) => `/.shim/${name}`

/**
 * What the exec'd file does when it is run: busybox says "applet not found",
 * a fake loader (PT_INTERP "/") cannot run (fakeLoaderOutcome); anything else
 * (a crafted program run directly in host mode) is not predicted.
 */
function outcomeOf(tree: string, plan: Plan & { ok: true }, mode: Mode): { kind: 'fake' | 'applet' | 'any' } {
  const hostPath = mode === 'container' ? plan.exec.slice(HOST_ROOT.length) : plan.exec
  const file = join(tree, hostPath)
  if (statSync(file).ino === busyboxIno) return { kind: 'applet' }
  const elf = readElf(memoryFile(readFileSync(file)), ARCHES.x86_64)
  return { kind: elf.ok && elf.interp === '/' ? 'fake' : 'any' }
}

interface Verdict {
  /** the debug lines, or a failure's one line and status, are the model's */
  readonly debugOk: boolean
  /** and after the debug lines, the run ended as predicted */
  readonly ok: boolean
  readonly detail: string
}

function compare(config: ShimConfig, plan: Plan, tree: string, mode: Mode, shimMode: ShimMode, status: number | null, stderr: Buffer): Verdict {
  let want: Buffer
  let wantStatus: number | undefined
  let prefixOnly = false
  const debug = plan.ok ? expectedOutput(config, plan, true).stderr : null
  if (!plan.ok) {
    ;({ stderr: want, status: wantStatus } = expectedOutput(config, plan, true))
  } else {
    const outcome = outcomeOf(tree, plan, mode)
    // A file run without a loader (host mode) is always execve'd, chainload shim or not.
    if (outcome.kind === 'fake') ({ stderr: want, status: wantStatus } = expectedOutput(config, plan, true, fakeLoaderOutcome(plan.loader === null ? 'exec' : shimMode)))
    else {
      want = debug as Buffer
      if (outcome.kind === 'applet') {
        want = Buffer.concat([want, toHostBytes(`${basename(plan.argv[0] ?? '')}: applet not found\n`)])
        wantStatus = 127
      } else prefixOnly = true
    }
  }
  const got = prefixOnly ? stderr.subarray(0, want.length) : stderr
  const ok = got.equals(want) && (prefixOnly || status === wantStatus)
  const debugOk = ok || (debug !== null && stderr.subarray(0, debug.length).equals(debug))
  return {
    debugOk,
    ok,
    detail: ok ? '' : `expected exit ${wantStatus ?? 'any'} and stderr${prefixOnly ? ' starting with' : ''}:\n${want.toString('latin1')}\ngot exit ${status} and stderr:\n${stderr.toString('latin1')}`,
  }
}

function describeTree(tree: RandomTree, index: number): string {
  // A pinned tree is rerun from the run's seed (its pin comes from its index).
  const rerun = index < PINNED.length ? `HOSTSHIM_DIFF_SEED=${SEED} HOSTSHIM_DIFF_TREES=${index + 1}` : `HOSTSHIM_DIFF_SEED=${tree.seed} HOSTSHIM_DIFF_TREES=1`
  return [
    `tree ${index}, seed ${tree.seed} (rerun: ${rerun})`,
    `shim ${tree.shim}, args ${JSON.stringify(tree.args)}`,
    ...tree.notes.map((n) => `  ${n}`),
    'tree:',
    ...Object.entries(tree.spec).map(([path, entry]) => `  ${path}  ${describeEntry(entry)}`),
  ].join('\n')
}

/** At most this many trees are described in full for each kind of difference. */
const SHOWN = 5

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    t.test(`${TREES} random host trees: the shim prints what the model says`, async (t) => {
      t.comment(`seed ${SEED} (HOSTSHIM_DIFF_SEED=${SEED} reruns these trees)`)
      const tally = new Map<string, number>()
      /** FAILURES names of the plans that failed in container mode */
      const failureKinds = new Set<string>()
      const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1)
      // Debug output that differs from the model's, and runs that then end otherwise than predicted.
      let failures = 0
      let endings = 0
      const report = (where: Mode, tree: RandomTree, index: number, v: Verdict) => {
        if (v.ok) return
        if (!v.debugOk) failures++
        else endings++
        if ((v.debugOk ? endings : failures) <= SHOWN) {
          t.fail(`${where} mode ${v.debugOk ? 'ends otherwise than predicted, after the model\'s debug lines' : 'differs'}\n${describeTree(tree, index)}\n${v.detail}`)
        }
      }
      for (let i = 0; i < TREES; i++) {
        const tree = randomTree(SEED + i, real, PINNED[i]?.pin)
        const { path: shim, config } = shims[mode][tree.shim]
        const dir = buildTree(join(scratch, mode, `t${i}`), { ...tree.spec, [HOST_AT(config.name)]: { file: '', mode: 0o644 } })
        const at = `/usr/bin/${config.name}`

        const plan = planTree(config, dir, [at, ...tree.args], 'container')
        const kind = plan.ok ? (plan.loader === null ? 'container: direct exec' : 'container: via the loader') : `container: ${plan.what} ${plan.errno}`
        count(kind)
        if (!plan.ok) failureKinds.add(plan.what)
        const wanted = PINNED[i]?.kind
        if (wanted !== undefined && kind !== wanted) t.fail(`pinned tree ${i} should plan "${wanted}", not "${kind}"\n${describeTree(tree, i)}`)
        const run = runShim({ root, tree: dir, shim, at, argv: [at, ...tree.args] })
        report('container', tree, i, compare(config, plan, dir, 'container', mode, run.status, run.stderr))

        if (tree.hostMode) {
          const hostAt = HOST_AT(config.name)
          const hostPlan = planTree(config, dir, [hostAt, ...tree.args], 'host')
          count(hostPlan.ok ? (hostPlan.loader === null ? 'host: direct exec' : 'host: via the loader') : `host: ${hostPlan.what} ${hostPlan.errno}`)
          // The tree is "/": no /run/host, so the shim is in host mode.
          const r = runHost(BWRAP, ['--bind', dir, '/', '--ro-bind', shim, hostAt, '--chdir', '/', '--die-with-parent', '--', hostAt, ...tree.args], {
            env: debugEnv(),
          })
          report('host', tree, i, compare(config, hostPlan, dir, 'host', mode, r.status, r.stderr))
        }
        if (failures >= SHOWN) break
      }
      t.equal(failures, 0, `no difference from the model's debug output and failures in ${TREES} trees`)
      t.equal(endings, 0, 'every run through the model\'s plan ended as predicted')
      t.comment([...tally].sort().map(([k, n]) => `${String(n).padStart(4)}  ${k}`).join('\n'))
      // The mix is wide enough to mean something.
      const kinds = [...tally.keys()]
      t.ok(kinds.some((k) => k === 'container: via the loader'), 'some trees run through the loader')
      t.ok(kinds.some((k) => k === 'container: direct exec'), 'some run a static target directly')
      const kindsOfFailure = [...failureKinds].sort()
      t.ok(kindsOfFailure.length >= 5, `and several kinds of failure: ${kindsOfFailure.join(', ')}`)
      for (const what of ['targetMissing', 'targetBad', 'wrongArch', 'loaderMissing', 'loaderBad']) t.ok(failureKinds.has(what), `a ${what} failure`)
      t.ok(kinds.some((k) => k.startsWith('host: ')), 'some run in host mode')
    })

    t.test('the real host, seen from a container, for a few real programs', async (t) => {
      for (const target of ['/usr/bin/env', '/bin/true', '/usr/bin/id', '/bin/busybox']) {
        const fields: ShimFields = { name: 'real', target, libDirs: ['/usr/local/lib'] }
        const config = shimConfig({ ...fields, mode })
        const plan = planTree(config, '/', ['/usr/bin/real', '--version'], 'container')
        const run = runShim({ root, tree: '/', shim: await buildShim(fields, mode), at: '/usr/bin/real', argv: ['/usr/bin/real', '--version'] })
        const debug = expectedOutput(config, plan, true).stderr
        t.equal(run.stderr.subarray(0, debug.length).toString('latin1'), debug.toString('latin1'), `${target}: the debug lines are the model's`)
      }
    })
  })
}

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
