// The plan cache's own rules (shim/README.md, section 10), with real shims
// over this machine's root seen from a container: where the file goes, who
// may have written it, what a damaged file does, and that no cache problem
// ever fails a launch.

import { spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ARCHES } from '../../launcher/arch.js'
import { shimConfigOf } from '../../launcher/config.js'
import { PLAN_FORMAT, parsePlanCache, planCacheDir, planCacheFileName } from '../../launcher/plan.js'
import { planCacheId } from '../../shim/template.js'
import { HOST_ROOT, assertNoStrayMounts, bwrapArgs, makeBusyboxRoot } from '../lib/container.js'
import { shimConfig } from '../lib/hosttree.js'
import { COMPILE_TIMEOUT_MS, MODES, buildShim, suiteScratch, type ShimFields } from '../lib/shims.js'
import { debugEnv, runShim } from '../lib/shimrun.js'

t.setTimeout(COMPILE_TIMEOUT_MS + 600_000)

const scratch = await suiteScratch(t, 'plancache')
const root = await makeBusyboxRoot(join(scratch, 'root'))
const FIELDS: ShimFields = { name: 'env', target: '/usr/bin/env' }
/** Where the runtime directory is bound in the container. */
const RT = '/tmp/rt'
const AT = '/usr/bin/env'
const OTHER_UID = 4321

let n = 0
/** A fresh runtime directory, 0700 and the caller's, as systemd makes /run/user/UID. */
function runtimeDir(): string {
  const dir = join(scratch, `rt${n++}`)
  mkdirSync(dir, { mode: 0o700 })
  return dir
}

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const shim = await buildShim(FIELDS, mode)
    const config = shimConfigOf({ ...shimConfig(FIELDS), mode })
    const rootStat = statSync('/', { bigint: true })
    const file = (rt: string) =>
      join(rt, PLAN_FORMAT.dir, planCacheFileName(planCacheId(config, ARCHES.x86_64), true, process.geteuid?.() ?? 0, rootStat.dev, rootStat.ino))
    const run = (rt: string | null, ro = false) => {
      const r = runShim({
        root,
        tree: '/',
        shim,
        at: AT,
        argv: [AT],
        env: rt === null ? debugEnv() : { ...debugEnv(), XDG_RUNTIME_DIR: RT },
        binds: rt === null ? [] : [[rt, RT, ro ? 'ro' : 'rw']],
      })
      const line = r.stderr.toString('latin1').split('\n')[1] ?? ''
      return { ...r, plan: line.replace(/^env: plan: /, '') }
    }
    const ran = (t: Test, r: ReturnType<typeof run>, what: string) => {
      t.equal(r.status, 0, `${what}: the program ran`)
      t.match(r.stdout.toString(), /^PATH=/m, `${what}: env printed its environment`)
    }

    t.test('kept on the first launch, used on the next', async (t) => {
      const rt = runtimeDir()
      const first = run(rt)
      t.equal(first.plan, 'computed (no cache file)')
      ran(t, first, 'first')
      t.equal(statSync(join(rt, 'hostshim')).mode & 0o7777, 0o700, 'the directory is 0700')
      t.equal(statSync(file(rt)).mode & 0o7777, 0o600, 'the file is 0600')
      t.same(readdirSync(join(rt, 'hostshim')), [file(rt).split('/').pop()], 'one file, no temporary left')
      const kept = parsePlanCache(readFileSync(file(rt)), ARCHES.x86_64)
      t.ok(kept, 'the model reads the file')
      t.equal(kept?.loader.startsWith(`${HOST_ROOT}/`), true, 'a plan through the host loader')
      t.ok(kept?.witnesses.some((w) => w.path === `${HOST_ROOT}/etc/ld.so.cache`), 'ld.so.cache is a witness')
      const second = run(rt)
      t.equal(second.plan, 'cached')
      ran(t, second, 'second')
      // Same debug lines after the plan line: the kept plan is the computed one.
      t.same(second.stderr.toString('latin1').split('\n').slice(2), first.stderr.toString('latin1').split('\n').slice(2))
    })

    t.test('a hit opens the file to run with no link on its path, and lstats none of the directories on the way', async (t) => {
      const rt = runtimeDir()
      t.equal(run(rt).plan, 'computed (no cache file)')
      const kept = parsePlanCache(readFileSync(file(rt)), ARCHES.x86_64)
      if (kept === null) throw new Error('no plan kept')
      const runPath = kept.direct ? kept.target : kept.loader
      const onWay = kept.witnesses.filter((w) => !w.follow && w.mode === 0o040000 && runPath.startsWith(`${w.path}/`))
      t.ok(onWay.length >= 2, `directories on the way to ${runPath}: ${onWay.map((w) => w.path).join(' ')}`)
      const hit = runShim({
        root,
        tree: '/',
        shim,
        at: AT,
        argv: [AT],
        env: { ...debugEnv(), XDG_RUNTIME_DIR: RT },
        binds: [[rt, RT, 'rw']],
        trace: join(scratch, `trace-hit-${mode}`),
        mode,
      })
      t.equal(hit.stderr.toString('latin1').split('\n')[1], 'env: plan: cached')
      const calls = hit.calls ?? []
      const looked = new Set(calls.filter((c) => /stat/.test(c.call)).map((c) => c.path))
      for (const w of onWay) t.notOk(looked.has(w.path), `not lstat'ed: ${w.path}`)
      const others = kept.witnesses.filter((w) => !onWay.includes(w) && w.path !== runPath)
      t.ok(others.length > 0)
      for (const w of others) t.ok(looked.has(w.path), `still checked: ${w.path}`)
      t.ok(calls.some((c) => c.call === 'openat2' && c.path === runPath), `openat2 of ${runPath}`)
      if (mode === 'chainload') {
        // The loader's segments are mapped populated: no fault for each 64 KiB the loader touches.
        const maps = (hit.trace ?? '').split('\n').filter((l) => /\bmmap\(/.test(l) && l.includes(`<${runPath}>`))
        t.ok(maps.length >= 2, `the loader's segments mapped: ${maps.length}`)
        for (const m of maps) t.match(m, /MAP_PRIVATE\|MAP_FIXED\|MAP_POPULATE/)
      }
    })

    t.test('no XDG_RUNTIME_DIR: no cache', async (t) => {
      const r = run(null)
      t.equal(r.plan, 'computed (no XDG_RUNTIME_DIR)')
      ran(t, r, 'without')
      t.equal(planCacheDir({}), null, 'planCacheDir agrees')
      t.equal(planCacheDir({ XDG_RUNTIME_DIR: 'relative' }), null)
      t.equal(planCacheDir({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/hostshim')
    })

    t.test('a directory another uid owns, or group-writable, is not used', async (t) => {
      for (const [label, spoil] of [
        ['another uid', (d: string) => chownSync(d, OTHER_UID, OTHER_UID)],
        ['group-writable', (d: string) => chmodSync(d, 0o770)],
        ['other-writable', (d: string) => chmodSync(d, 0o703)],
      ] as const) {
        const rt = runtimeDir()
        ran(t, run(rt), label)
        const before = readFileSync(file(rt))
        spoil(join(rt, 'hostshim'))
        const r = run(rt)
        t.equal(r.plan, 'computed (cache dir not private)', label)
        ran(t, r, label)
        t.same(readFileSync(file(rt)), before, `${label}: the file was not rewritten`)
      }
    })

    t.test('a file another uid owns, or group-writable, is not used', async (t) => {
      for (const [label, spoil] of [
        ['another uid', (f: string) => chownSync(f, OTHER_UID, OTHER_UID)],
        ['group-writable', (f: string) => chmodSync(f, 0o620)],
      ] as const) {
        const rt = runtimeDir()
        ran(t, run(rt), label)
        spoil(file(rt))
        const r = run(rt)
        t.equal(r.plan, 'computed (cache file not private)', label)
        ran(t, r, label)
        t.equal(run(rt).plan, 'cached', `${label}: replaced by a file of the caller's`)
      }
    })

    t.test('a corrupt, truncated or oversized file is ignored and rewritten', async (t) => {
      const spoils: [string, (f: string) => void][] = [
        ['a byte flipped', (f) => {
          const b = readFileSync(f)
          b.writeUInt8((b.readUInt8(b.length >> 1) ^ 0x40) & 255, b.length >> 1)
          writeFileSync(f, b)
        }],
        ['truncated', (f) => truncateSync(f, statSync(f).size - 8)],
        ['empty', (f) => truncateSync(f, 0)],
        ['oversized', (f) => writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.alloc(PLAN_FORMAT.maxBytes)]))],
        ['garbage', (f) => writeFileSync(f, Buffer.alloc(4096, 0xa5))],
      ]
      for (const [label, spoil] of spoils) {
        const rt = runtimeDir()
        ran(t, run(rt), label)
        spoil(file(rt))
        chmodSync(file(rt), 0o600)
        const r = run(rt)
        t.equal(r.plan, 'computed (invalid cache file)', label)
        ran(t, r, label)
        t.ok(parsePlanCache(readFileSync(file(rt)), ARCHES.x86_64), `${label}: rewritten whole`)
        t.equal(run(rt).plan, 'cached', `${label}: and used again`)
      }
    })

    t.test('a read-only runtime directory: the launch still works, nothing is written', async (t) => {
      const rt = runtimeDir()
      const r = run(rt, true)
      t.equal(r.plan, 'computed (no cache file)')
      ran(t, r, 'read-only')
      t.notOk(existsSync(join(rt, 'hostshim')), 'nothing written')
    })

    t.test('a directory in the file\'s place, or a link: not used, the launch works', async (t) => {
      const rt = runtimeDir()
      mkdirSync(join(rt, 'hostshim'), { mode: 0o700 })
      mkdirSync(file(rt))
      const r = run(rt)
      t.equal(r.plan, 'computed (cache file not private)')
      ran(t, r, 'a directory')
    })

    t.test('32 first launches at once: all run, the file is whole after', async (t) => {
      const rt = runtimeDir()
      const args = bwrapArgs({
        root,
        host: '/',
        binds: [
          [shim, AT, 'ro'],
          [rt, RT, 'rw'],
        ],
        argv: [AT],
        env: { ...debugEnv(), XDG_RUNTIME_DIR: RT },
      })
      const one = () =>
        new Promise<number | null>((done) => {
          const child = spawn(args[0] as string, args.slice(1), { env: { ...debugEnv(), XDG_RUNTIME_DIR: RT }, stdio: ['ignore', 'pipe', 'ignore'] })
          let out = ''
          child.stdout.on('data', (d: Buffer) => (out += d.toString()))
          child.on('close', (code) => done(code === 0 && /^PATH=/m.test(out) ? 0 : (code ?? -1)))
        })
      const codes = await Promise.all(Array.from({ length: 32 }, one))
      t.same(codes, Array(32).fill(0), 'every launch ran the program')
      t.ok(parsePlanCache(readFileSync(file(rt)), ARCHES.x86_64), 'the file is whole')
      t.same(readdirSync(join(rt, 'hostshim')), [file(rt).split('/').pop()], 'no temporary file left')
      t.equal(run(rt).plan, 'cached')
    })
  })
}

t.test('a shim built without the cache never touches the runtime directory', async (t) => {
  const shim = await buildShim({ ...FIELDS, planCache: false }, 'chainload')
  const rt = runtimeDir()
  const r = runShim({ root, tree: '/', shim, at: AT, argv: [AT], env: { ...debugEnv(), XDG_RUNTIME_DIR: RT }, binds: [[rt, RT, 'rw']] })
  t.equal(r.stderr.toString('latin1').split('\n')[1], 'env: plan: computed (cache off)')
  t.equal(r.status, 0)
  t.same(readdirSync(rt), [], 'nothing written')
})

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
