// `hostshim cache`: the three cache directories, their sizes, and --clear
// removing exactly those (every path here is a scratch directory: the
// machine's own caches are never touched).

import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { JSON_SCHEMA_VERSION } from '../launcher/cli.js'
import { EXIT_CODES } from '../launcher/errors.js'
import { runCli } from './lib/cli.js'

const dir = await mkdtemp(join(tmpdir(), 'hostshim-cache-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

async function fill(path: string, files: Record<string, number>): Promise<void> {
  for (const [name, size] of Object.entries(files)) {
    await mkdir(join(path, name, '..'), { recursive: true })
    await writeFile(join(path, name), Buffer.alloc(size))
  }
}

const envOf = (base: string) => ({
  HOME: join(base, 'home'),
  HOSTSHIM_CACHE: join(base, 'home/.cache/hostshim'),
  ZIG_GLOBAL_CACHE_DIR: join(base, 'home/.cache/zig'),
  XDG_RUNTIME_DIR: join(base, 'run'),
})

t.test('lists the three caches with paths and sizes, and clears exactly them', async (t) => {
  const base = join(dir, 'a')
  const env = envOf(base)
  await fill(env.HOSTSHIM_CACHE, { 'a.bin': 1000, 'b.bin': 24 })
  await fill(env.ZIG_GLOBAL_CACHE_DIR, { 'o/x/libc.a': 2048, 'h/y': 1 })
  await fill(join(env.XDG_RUNTIME_DIR, 'hostshim'), { plan: 10 })
  await fill(join(base, 'home/.cache'), { 'other/keep': 5 })
  await fill(env.XDG_RUNTIME_DIR, { 'other-keep': 5 })

  const list = await runCli(['cache', '--json'], { env })
  t.equal(list.code, 0, list.stderr)
  const report = JSON.parse(list.stdout) as { schemaVersion: number; cleared: boolean; caches: { name: string; path: string; exists: boolean; bytes: number; files: number }[] }
  t.equal(report.schemaVersion, JSON_SCHEMA_VERSION)
  t.same(
    report.caches.map(({ name, path, exists, bytes, files }) => ({ name, path, exists, bytes, files })),
    [
      { name: 'hostshim', path: env.HOSTSHIM_CACHE, exists: true, bytes: 1024, files: 2 },
      { name: 'zig', path: env.ZIG_GLOBAL_CACHE_DIR, exists: true, bytes: 2049, files: 2 },
      { name: 'plan', path: join(env.XDG_RUNTIME_DIR, 'hostshim'), exists: true, bytes: 10, files: 1 },
    ],
  )
  const text = await runCli(['cache'], { env })
  t.equal(text.stdout.split('\n')[0], `hostshim: "${env.HOSTSHIM_CACHE}": 1.0 KiB in 2 files; compiled shims, by content`)

  const cleared = await runCli(['cache', '--clear'], { env })
  t.equal(cleared.code, 0, cleared.stderr)
  t.match(cleared.stdout, /^hostshim: .*: removed \(1\.0 KiB in 2 files\)/)
  for (const gone of [env.HOSTSHIM_CACHE, env.ZIG_GLOBAL_CACHE_DIR, join(env.XDG_RUNTIME_DIR, 'hostshim')]) {
    await t.rejects(stat(gone), { code: 'ENOENT' }, `${gone} removed`)
  }
  t.same((await readdir(join(base, 'home/.cache'))).sort(), ['other'], 'the rest of ~/.cache stays')
  t.same(await readdir(env.XDG_RUNTIME_DIR), ['other-keep'], 'the rest of $XDG_RUNTIME_DIR stays')
  const after = await runCli(['cache'], { env })
  t.match(after.stdout, /^hostshim: .*: absent;/)
})

t.test('without XDG_RUNTIME_DIR there is no plan cache; zig follows XDG_CACHE_HOME', async (t) => {
  const base = join(dir, 'b')
  const r = await runCli(['cache', '--json'], { env: { HOME: join(base, 'home'), HOSTSHIM_CACHE: '', XDG_CACHE_HOME: join(base, 'xdg'), ZIG_GLOBAL_CACHE_DIR: '', XDG_RUNTIME_DIR: '' } })
  t.equal(r.code, 0, r.stderr)
  const caches = (JSON.parse(r.stdout) as { caches: { name: string; path: string }[] }).caches
  t.same(caches.map((c) => [c.name, c.path]), [['hostshim', join(base, 'xdg/hostshim')], ['zig', join(base, 'xdg/zig')]])
})

t.test('--clear refuses a path that is not plainly a cache, and then removes nothing', async (t) => {
  const base = join(dir, 'c')
  const env = envOf(base)
  await fill(env.ZIG_GLOBAL_CACHE_DIR, { keep: 1 })
  await fill(join(base, 'home'), { precious: 1 })
  await mkdir(join(base, 'elsewhere'), { recursive: true })
  await symlink(join(base, 'elsewhere'), join(base, 'link'))
  for (const [hostshimCache, why] of [
    ['/', 'it is "/"'],
    [env.HOME, 'it is the home directory or holds it'],
    [base, 'it is the home directory or holds it'],
    [join(base, 'link'), 'it is not a directory'],
  ] as const) {
    const r = await runCli(['cache', '--clear'], { env: { ...env, HOSTSHIM_CACHE: hostshimCache } })
    t.equal(r.code, EXIT_CODES.refused, hostshimCache)
    t.equal(r.stderr, `hostshim: will not remove the hostshim cache "${hostshimCache}": ${why}\n`)
  }
  t.ok(await stat(join(env.ZIG_GLOBAL_CACHE_DIR, 'keep')), 'the zig cache is still there')
  t.ok(await stat(join(base, 'home/precious')))
  t.ok(await stat(join(base, 'elsewhere')))
})
