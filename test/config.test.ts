import t, { type Test } from 'tap'
import { ARCH_NAMES, nativeArch } from '../launcher/arch.js'
import { CONFIG_FIELDS, checkIdentifier, originRelative, parseArchList, shimConfigOf, validateConfig } from '../launcher/config.js'
import { ConfigError } from '../launcher/errors.js'

const base = { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' }

function refusal(t: Test, raw: Record<string, unknown>, field: string, reason: RegExp, check: (raw: Record<string, unknown>) => unknown = validateConfig): void {
  try {
    check(raw)
    t.fail(`accepted ${JSON.stringify(raw)}`)
  } catch (error) {
    t.type(error, ConfigError)
    t.equal((error as ConfigError).field, field)
    t.match((error as ConfigError).reason, reason)
  }
}

t.test('defaults', async (t) => {
  const c = validateConfig(base)
  t.equal(c.hostRoot, '/run/host')
  t.equal(c.debugEnv, 'HOSTSHIM_DEBUG')
  t.equal(c.argv0, true)
  t.same(c.libDirs, [])
  t.same(c.env, [])
  t.same(c.arch, [nativeArch()])
  t.notOk('output' in c)
})

t.test('every field is taken', async (t) => {
  const c = validateConfig({
    ...base,
    hostRoot: '/host/',
    libDirs: ['/opt/lib/'],
    arch: 'aarch64, x86_64,aarch64',
    argv0: false,
    debugEnv: 'TB_DEBUG',
    env: { A: '1', B_2: 'x y' },
    output: 'o',
    outDir: 'd',
  })
  t.equal(c.hostRoot, '/host', 'trailing slashes dropped')
  t.same(c.libDirs, ['/opt/lib'])
  t.same(c.arch, ['aarch64', 'x86_64'], 'comma list, de-duplicated, in order')
  t.equal(c.argv0, false)
  t.same(c.env, [['A', '1'], ['B_2', 'x y']])
  t.equal(c.output, 'o')
  t.equal(c.outDir, 'd')
  t.equal(c.mode, 'chainload', 'the default mode')
  t.same(Object.keys(shimConfigOf(c)), ['name', 'target', 'hostRoot', 'libDirs', 'argv0', 'debugEnv', 'env', 'mode'])
  t.same(Object.keys(shimConfigOf({ ...c, mode: 'exec' })), ['name', 'target', 'hostRoot', 'libDirs', 'argv0', 'debugEnv', 'env'], 'exec mode is not written down')
})

t.test('arch lists', async (t) => {
  t.same(parseArchList('arch', 'all'), ARCH_NAMES)
  t.same(parseArchList('arch', ['i686', 'all']), ['i686', ...ARCH_NAMES.filter((a) => a !== 'i686')])
  const arch = (raw: Record<string, unknown>) => parseArchList('arch', raw.arch)
  refusal(t, { arch: 'sparc' }, 'arch', /unknown architecture "sparc"; known: x86_64/, arch)
  refusal(t, { arch: '' }, 'arch', /unknown architecture ""/, arch)
  refusal(t, { arch: [3] }, 'arch', /number 3/, arch)
  refusal(t, { arch: [] }, 'arch', /names no architecture/, arch)
})

t.test('refusals name the field and say why', async (t) => {
  refusal(t, { target: '/x' }, 'name', /required/)
  refusal(t, { name: 'x' }, 'target', /required/)
  refusal(t, { ...base, target: 'rel' }, 'target', /absolute path, got "rel"/)
  refusal(t, { ...base, target: '/' }, 'target', /must name a file/)
  refusal(t, { ...base, target: '/run/host/usr/bin/x' }, 'target', /drop the "\/run\/host" prefix/)
  refusal(t, { ...base, target: `/${'a'.repeat(4095)}` }, 'target', /4096 bytes long; the limit is 4095/)
  refusal(t, { ...base, target: '/a\0b' }, 'target', /NUL/)
  refusal(t, { ...base, target: '/a\ud800' }, 'target', /well-formed/)
  refusal(t, { ...base, target: 5 }, 'target', /must be a string, got number 5/)
  refusal(t, { ...base, name: '-rf' }, 'name', /not a program name/)
  refusal(t, { ...base, name: 'a/b' }, 'name', /not a program name/)
  refusal(t, { ...base, hostRoot: '/' }, 'hostRoot', /must not be "\/"/)
  refusal(t, { ...base, libDirs: '/lib' }, 'libDirs', /array/)
  refusal(t, { ...base, libDirs: ['/a:b'] }, 'libDirs[0]', /":", ";" or "\$"/)
  refusal(t, { ...base, libDirs: ['/ok', '/$ORIGIN'] }, 'libDirs[1]', /":", ";" or "\$"/)
  refusal(t, { ...base, argv0: 'yes' }, 'argv0', /true or false/)
  refusal(t, { ...base, debugEnv: '1X' }, 'debugEnv', /not a name/)
  refusal(t, { ...base, env: ['A=1'] }, 'env', /object/)
  refusal(t, { ...base, env: null }, 'env', /got null/)
  refusal(t, { ...base, env: { 'A-B': '1' } }, 'env.A-B', /not a name/)
  refusal(t, { ...base, env: { A: 1 } }, 'env.A', /string/)
  refusal(t, { ...base, env: { HOSTSHIM_DEBUG: '1' } }, 'env.HOSTSHIM_DEBUG', /debug variable/)
  refusal(t, { ...base, colour: 'red' }, 'colour', /not a config field; known fields: name/)
})

t.test('$ORIGIN targets: relative to the shim, "$ORIGIN/" only as a prefix', async (t) => {
  t.equal(validateConfig({ ...base, target: '$ORIGIN/prog' }).target, '$ORIGIN/prog')
  t.equal(validateConfig({ ...base, target: '$ORIGIN/../libexec/x/' }).target, '$ORIGIN/../libexec/x', 'trailing "/" dropped, ".." kept')
  t.equal(validateConfig({ ...base, target: '$ORIGIN/src/run/host/x' }).target, '$ORIGIN/src/run/host/x', 'not a host path: the host root prefix rule does not apply')
  t.equal(validateConfig({ ...base, target: '/usr/bin/$HOME' }).target, '/usr/bin/$HOME', 'other "$" in an absolute target as before')
  refusal(t, { ...base, target: '$ORIGIN/' }, 'target', /names no file after "\$ORIGIN\/"/)
  refusal(t, { ...base, target: '$ORIGIN//' }, 'target', /names no file/)
  refusal(t, { ...base, target: '$ORIGIN' }, 'target', /may only begin the target/)
  refusal(t, { ...base, target: '$ORIGINAL/x' }, 'target', /may only begin the target/)
  refusal(t, { ...base, target: '$ORIGIN//abs' }, 'target', /must be a relative path/)
  refusal(t, { ...base, target: '/opt/$ORIGIN/x' }, 'target', /may only begin the target/)
  refusal(t, { ...base, target: '$ORIGIN/a/$ORIGIN/b' }, 'target', /may only begin the target/)
  refusal(t, { ...base, target: '${ORIGIN}/x' }, 'target', /may only begin the target, as "\$ORIGIN\/REL"/)
  refusal(t, { ...base, target: `$ORIGIN/${'a'.repeat(4088)}` }, 'target', /4096 bytes long; the limit is 4095/)
  refusal(t, { ...base, target: '$ORIGIN/a\0b' }, 'target', /NUL/)
  t.equal(originRelative('$ORIGIN/../x'), '../x')
  t.equal(originRelative('/usr/bin/x'), null)
})

t.test('identifiers', async (t) => {
  t.equal(checkIdentifier('f', '_a1'), '_a1')
  t.throws(() => checkIdentifier('f', 'a b'), ConfigError)
  t.ok(CONFIG_FIELDS.includes('libDirs'))
})

t.test('requireHostRoot: a boolean, baked in (and in the config hash) only when true', async (t) => {
  const base = { name: 'x', target: '/usr/bin/x' }
  t.equal(validateConfig({ ...base, requireHostRoot: true }).requireHostRoot, true)
  t.equal(validateConfig({ ...base, requireHostRoot: false }).requireHostRoot, undefined)
  t.throws(() => validateConfig({ ...base, requireHostRoot: 'yes' }), new ConfigError('requireHostRoot', 'must be true or false, got string "yes"'))
  t.same(Object.keys(shimConfigOf(validateConfig({ ...base, requireHostRoot: false }))), Object.keys(shimConfigOf(validateConfig(base))), 'false: the shape configs had before the field')
  t.equal(shimConfigOf(validateConfig({ ...base, requireHostRoot: true })).requireHostRoot, true)
})

t.test('requireHostRoot in the plan model: host mode fails naming the host root; container mode is unchanged', async (t) => {
  const { mkdtemp, mkdir, rm, writeFile } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { ARCHES } = await import('../launcher/arch.js')
  const { nodeHostView } = await import('../launcher/hostview.js')
  const { planShim } = await import('../launcher/plan.js')
  const dir = await mkdtemp(join(tmpdir(), 'hostshim-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = shimConfigOf(validateConfig({ name: 'x', target: '/usr/bin/x', requireHostRoot: true }))
  const plan = (mode: 'host' | 'container') => planShim(config, ARCHES.x86_64, nodeHostView(dir), { mode, argv: ['x'] })
  t.match(plan('host'), { ok: false, exitCode: 127, errno: 'ENOENT', what: 'noHostRoot', message: 'x: host root not mounted: /run/host: No such file or directory' })
  await mkdir(join(dir, 'run'))
  await writeFile(join(dir, 'run/host'), '')
  t.match(plan('host'), { ok: false, exitCode: 127, errno: 'ENOTDIR' }, 'a file there')
  await rm(join(dir, 'run/host'))
  await mkdir(join(dir, 'run/host'))
  t.match(plan('host'), { ok: false, exitCode: 127, errno: 'ENOENT' }, 'a directory that is "/" itself (host mode although it exists)')
  t.match(plan('container'), { ok: false, what: 'targetMissing' }, 'container mode: the usual steps')
})
