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

import { copyFileSync, cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, statSync, symlinkSync, unlinkSync, readlinkSync, writeFileSync, existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import t from 'tap'
import { shimConfigOf, type ShimConfig, type ShimMode } from '../../launcher/config.js'
import {
  PLAN_FORMAT,
  parsePlanCache,
  planCacheFileName,
  planShim,
  readElf,
  toHostBytes,
  type Mode,
  type Plan,
  type PlanCacheInput,
} from '../../launcher/plan.js'
import { nodeHostView, nodeRuntimeFiles } from '../../launcher/hostview.js'
import { planCacheId } from '../../shim/template.js'
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
  { pin: { target: 'missing', via: 'file' }, kind: 'container: targetMissing ENOENT' },
  { pin: { target: 'broken', broken: 'not-elf', via: 'file' }, kind: 'container: targetBad ENOEXEC' },
  { pin: { target: 'broken', broken: 'foreign', via: 'file' }, kind: 'container: wrongArch ENOEXEC' },
  { pin: { loader: 'missing', target: 'dynamic', via: 'file' }, kind: 'container: loaderMissing ENOENT' },
  { pin: { loader: 'not-elf', target: 'dynamic', via: 'file' }, kind: 'container: loaderBad ENOEXEC' },
  // Paths that end in a link to "." or "..": the directory, as the shim re-stats it.
  { pin: { target: 'dynamic', via: 'dot-link' }, kind: 'container: targetBad EISDIR' },
  { pin: { loader: 'dot-link', target: 'dynamic', via: 'file' }, kind: 'container: loaderBad EISDIR' },
]
/** Trees of the kept-plan rounds: each is run, mutated and run again. */
const CACHE_TREES = Number(process.env.HOSTSHIM_DIFF_CACHE_TREES ?? 40)
t.setTimeout(COMPILE_TIMEOUT_MS + MODES.length * (TREES + 4 * CACHE_TREES) * 2000)

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
    // The model is told the mode too: its debug line says "chainload" or "exec" as the shim does.
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

// ---------------------------------------------------------------------------
// Kept plans (shim/README.md, section 10): run, mutate, run again.

/** Where the runtime directory is bound in the container (XDG_RUNTIME_DIR). */
const RT = '/tmp/rt'

/**
 * A mutation of a tree between the run that keeps the plan and the one that
 * may use it. `keeps`: the kept plan must still be used after it (true), or
 * must not (false). Each returns what it did, or null when the tree has
 * nothing it applies to.
 */
interface Mutation {
  readonly name: string
  readonly keeps: boolean
  apply(tree: string, plan: Plan & { ok: true }, file: Buffer): string | null
}

/** A file replaced by a copy of itself, as a package upgrade does: new inode, same bytes. */
function replaceFile(path: string): void {
  const tmp = `${path}.new`
  copyFileSync(path, tmp)
  renameSync(tmp, path)
}

/** The host path of a full path the shim printed (container mode). */
const hostPathOf = (full: string) => full.slice(HOST_ROOT.length)

function targetOf(plan: Plan & { ok: true }): string {
  if (plan.loader === null) return plan.exec
  return plan.argv[plan.argv.indexOf('--library-path') + 2] as string
}

const S_IFDIR = 0o040000

/**
 * The directories a kept plan records on the way to its file to run, below
 * the root: the shim's open of that file (no link on the way) stands for
 * their lstat()s (shim/README.md, section 10).
 */
function onWayDirs(file: Buffer): string[] {
  const kept = parsePlanCache(file, ARCHES.x86_64)
  if (kept === null) return []
  const run = kept.direct ? kept.target : kept.loader
  return kept.witnesses
    .filter((w) => !w.follow && !w.caller && w.err === 0 && w.mode === S_IFDIR && run.startsWith(`${w.path}/`) && w.path.startsWith(`${HOST_ROOT}/`))
    .map((w) => w.path)
}

const MUTATIONS: readonly Mutation[] = [
  {
    name: 'replace the target',
    keeps: false,
    apply: (tree, plan) => (replaceFile(join(tree, hostPathOf(targetOf(plan)))), targetOf(plan)),
  },
  {
    name: 'swap the loader',
    keeps: false,
    apply: (tree, plan) => (plan.loader === null ? null : (replaceFile(join(tree, hostPathOf(plan.loader))), plan.loader)),
  },
  {
    name: 'ldconfig rewrites ld.so.cache',
    keeps: false,
    apply: (tree) => (replaceFile(join(tree, 'etc/ld.so.cache')), '/etc/ld.so.cache'),
  },
  {
    name: 'retarget a link on the way (same text, a new link)',
    keeps: false,
    apply: (tree, _plan, file) => {
      const kept = parsePlanCache(file, ARCHES.x86_64)
      const link = kept?.witnesses.find((w) => w.err === 0 && (w.mode & 0o170000) === 0o120000)
      if (!link) return null
      const at = join(tree, hostPathOf(link.path))
      const text = readlinkSync(at)
      unlinkSync(at)
      symlinkSync(text, at)
      return link.path
    },
  },
  {
    name: 'a directory on the way to the file to run becomes a link to itself, moved',
    keeps: false,
    apply: (tree, _plan, file) => {
      const dir = onWayDirs(file)[0]
      if (dir === undefined) return null
      const at = join(tree, hostPathOf(dir))
      renameSync(at, `${at}.moved`)
      symlinkSync(`${basename(at)}.moved`, at)
      return dir
    },
  },
  {
    name: 'a directory on the way replaced by a new one, its entries moved into it',
    keeps: true,
    apply: (tree, _plan, file) => {
      // Moving an entry changes its ctime: only a directory whose witnessed entries are all directories
      // (recorded by their type alone) keeps the plan.
      const kept = parsePlanCache(file, ARCHES.x86_64)
      const dir = onWayDirs(file).find((d) => kept?.witnesses.every((w) => dirname(w.path) !== d || w.mode === S_IFDIR))
      if (dir === undefined) return null
      const at = join(tree, hostPathOf(dir))
      const mode = lstatSync(at).mode & 0o7777
      renameSync(at, `${at}.old`)
      mkdirSync(at, { mode })
      for (const entry of readdirSync(`${at}.old`)) renameSync(join(`${at}.old`, entry), join(at, entry))
      rmdirSync(`${at}.old`)
      return dir
    },
  },
  {
    name: 'install a file next to the target',
    keeps: true,
    apply: (tree, plan) => {
      const dir = dirname(join(tree, hostPathOf(targetOf(plan))))
      writeFileSync(join(dir, 'unrelated-new-file'), 'x')
      return dir
    },
  },
  {
    name: 'add an unrelated directory',
    keeps: true,
    apply: (tree) => (mkdirSync(join(tree, 'opt/unrelated'), { recursive: true }), '/opt/unrelated'),
  },
  {
    name: 'read the target (atime only)',
    keeps: true,
    apply: (tree, plan) => (readFileSync(join(tree, hostPathOf(targetOf(plan)))), 'read'),
  },
]

/** Give a tree the host's ld.so.cache, where its /etc is a real directory (never through a link). */
function addLdCache(tree: string): void {
  const etc = join(tree, 'etc')
  if (!existsSync(etc)) mkdirSync(etc)
  if (!lstatSync(etc).isDirectory()) return
  const cache = join(etc, 'ld.so.cache')
  try {
    if (!lstatSync(cache).isFile()) return
  } catch {
    writeFileSync(cache, 'ld.so-1.7.0\0')
  }
}

/** What the shim finds of its cache, its runtime directory `rt` bound at RT, for the tree at `tree` (container mode). */
function cacheInput(config: ShimConfig, tree: string, rt: string): PlanCacheInput {
  // The id of the shim as built: its config with the mode it was built in.
  const st = statSync(tree, { bigint: true })
  const files = nodeRuntimeFiles()
  const real = (path: string) => (path.startsWith(`${RT}/`) ? rt + path.slice(RT.length) : path)
  return {
    id: planCacheId(config, ARCHES.x86_64),
    euid: process.geteuid?.() ?? 0,
    rootDev: st.dev,
    rootIno: st.ino,
    lstat: (path) => files.lstat(real(path)),
    read: (path) => files.read(real(path)),
  }
}

/** Wait until every file of the trees is older than the shim's racy window, so that the first run may keep its plan. */
async function settle(): Promise<void> {
  await new Promise((done) => setTimeout(done, (PLAN_FORMAT.racySeconds + 0.2) * 1000))
}

for (const mode of MODES) {
  t.test(`${mode} mode: kept plans over ${CACHE_TREES} random trees, each mutated once`, async (t) => {
    const seed = SEED + 1_000_000
    t.comment(`seed ${seed} (HOSTSHIM_DIFF_SEED=${SEED} reruns these trees)`)
    interface Round { tree: RandomTree; index: number; dir: string; rt: string; config: ShimConfig; shim: string }
    const rounds: Round[] = []
    for (let i = 0; i < CACHE_TREES; i++) {
      const tree = randomTree(seed + i, real)
      const { path: shim, config: fields } = shims[mode][tree.shim]
      const config = shimConfigOf({ ...fields, mode })
      const dir = buildTree(join(scratch, `${mode}-cache`, `t${i}`), tree.spec)
      addLdCache(dir)
      const rt = join(scratch, `${mode}-cache`, `rt${i}`)
      mkdirSync(rt, { mode: 0o700 })
      rounds.push({ tree, index: 1_000_000 + i, dir, rt, config, shim })
    }
    await settle()
    let differ = 0
    let kept = 0
    let ran = 0
    const notKept: number[] = []
    const seen = new Map<string, number>()
    const check = (what: string, r: Round, plan: Plan, status: number | null, stderr: Buffer) => {
      const v = compare(r.config, plan, r.dir, 'container', mode, status, stderr)
      if (!v.ok && ++differ <= SHOWN) t.fail(`${what}\n${describeTree(r.tree, r.index)}\n${v.detail}`)
      return v.ok
    }
    for (const r of rounds) {
      const at = `/usr/bin/${r.config.name}`
      const argv = [at, ...r.tree.args]
      const env = [`XDG_RUNTIME_DIR=${RT}`]
      const run = (dir: string) =>
        runShim({ root, tree: dir, shim: r.shim, at, argv, env: { ...debugEnv(), XDG_RUNTIME_DIR: RT }, binds: [[r.rt, RT, 'rw']] })
      const modelAt = (dir: string) => planShim(r.config, ARCHES.x86_64, nodeHostView(dir), { mode: 'container', argv, env, cache: cacheInput(r.config, dir, r.rt) })

      // 1. Nothing kept yet: computed, and kept when it ran.
      const first = modelAt(r.dir)
      const one = run(r.dir)
      check('first run differs from the model', r, first, one.status, one.stderr)
      if (!first.ok) continue
      ran++
      const name = planCacheFileName(planCacheId(r.config, ARCHES.x86_64), true, process.geteuid?.() ?? 0, statSync(r.dir, { bigint: true }).dev, statSync(r.dir, { bigint: true }).ino)
      const file = join(r.rt, PLAN_FORMAT.dir, name)
      // Not kept: more witnesses than a plan may have (link chains near the limit of 40).
      if (!existsSync(file)) {
        notKept.push(r.tree.seed)
        if (process.env.HOSTSHIM_DIFF_DEBUG) t.comment(`${r.tree.seed}: ${readdirSync(r.rt, { recursive: true }).join(' ')} ${one.stderr.toString('latin1').split('\n').slice(0, 3).join(' | ')}`)
        continue
      }
      kept++
      const bytes = readFileSync(file)

      // 2. A mutation, or a new root (a copy of the tree: another device/inode pair).
      // Each mutation in turn, and then a new root, so that a few trees try them all.
      const turn = (kept - 1) % (MUTATIONS.length + 1)
      const mutation = turn === MUTATIONS.length ? null : (MUTATIONS[turn] as Mutation)
      let dir = r.dir
      let did: string | null = 'copied'
      if (mutation === null) {
        dir = `${r.dir}-copy`
        cpSync(r.dir, dir, { recursive: true, verbatimSymlinks: true })
      } else {
        did = mutation.apply(r.dir, first, bytes)
      }
      if (did === null) continue
      const label = mutation?.name ?? 'change the root'
      seen.set(label, (seen.get(label) ?? 0) + 1)

      // 3. The model, with the kept file, says what the shim does; and a kept plan is the computed one.
      const second = modelAt(dir)
      const fresh = planShim(r.config, ARCHES.x86_64, nodeHostView(dir), { mode: 'container', argv })
      const two = run(dir)
      check(`after "${label}" (${did}) the run differs from the model`, r, second, two.status, two.stderr)
      if (!second.ok || !fresh.ok) {
        t.fail(`after "${label}" a plan that ran no longer does\n${describeTree(r.tree, r.index)}`)
        continue
      }
      const cached = second.plan === 'cached'
      const keeps = mutation?.keeps ?? false
      if (cached !== keeps) {
        if (++differ <= SHOWN) t.fail(`after "${label}" (${did}): plan: ${second.plan}, expected ${keeps ? 'cached' : 'computed'}\n${describeTree(r.tree, r.index)}`)
      }
      const same = second.loader === fresh.loader && second.libraryPath === fresh.libraryPath && second.exec === fresh.exec && second.argv.join('\0') === fresh.argv.join('\0')
      if (!same && ++differ <= SHOWN) t.fail(`after "${label}" the kept plan is not the computed one\n${describeTree(r.tree, r.index)}`)
    }
    t.equal(differ, 0, 'every second run is the model\'s, and cached exactly when no witness changed')
    t.comment(`${kept} plans kept; not kept (seeds): ${notKept.join(' ') || 'none'}`)
    t.ok(kept >= ran / 2, `most trees that run keep their plan (${kept} of ${ran})`)
    t.comment([...seen].sort().map(([k, n]) => `${String(n).padStart(4)}  ${k}`).join('\n'))
    t.ok([...seen.keys()].some((k) => MUTATIONS.find((m) => m.name === k)?.keeps), 'some mutations keep the plan')
    t.ok([...seen.keys()].some((k) => !MUTATIONS.find((m) => m.name === k)?.keeps), 'some invalidate it')
  })
}

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
