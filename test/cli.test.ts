// The command line's promises: help with examples for every command, exit
// codes documented the same way in --help and the README, progress on a
// terminal only, and one-line errors.

import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { EXIT_CODE_HELP, JSON_SCHEMA_VERSION, buildProgram } from '../launcher/cli.js'
import { makeDirs } from '../launcher/toolchain.js'
import { EXIT_CODES } from '../launcher/errors.js'
import { REPO, hostshimCommandDir, runCli } from './lib/cli.js'
import { COMPILE_TIMEOUT_MS } from './lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 3)

const commands = buildProgram({ stdout: () => undefined, stderr: () => undefined, isTTY: false, env: {}, cwd: '/' }).commands.map((c) => c.name())

t.test('every command has --help with examples', async (t) => {
  t.same(commands, ['generate', 'render', 'inspect', 'plan', 'install', 'uninstall', 'doctor', 'cache'])
  for (const name of commands) {
    const r = await runCli([name, '--help'])
    t.equal(r.code, 0, name)
    t.match(r.stdout, new RegExp(`\\n\\nExamples:\\n(  hostshim ${name}( .*)?\\n)+`), `${name} --help shows examples`)
  }
  const top = await runCli(['--help'])
  t.equal(top.code, 0)
  t.ok(top.stdout.includes(EXIT_CODE_HELP), 'the exit codes are in the top-level help')
})

t.test('--help and the README list the same exit codes', async (t) => {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8')
  const inReadme = [...readme.matchAll(/^\| hostshim \| (\d+) \|/gm)].map((m) => Number(m[1]))
  const inHelp = [...EXIT_CODE_HELP.matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]))
  const codes = Object.values(EXIT_CODES).sort((a, b) => a - b)
  t.same(inReadme, codes)
  t.same(inHelp, codes)
})

t.test('each compile that misses the cache says so on stderr, never on stdout', { timeout: COMPILE_TIMEOUT_MS }, async (t) => {
  const args = (dir: string) => ['generate', '-n', 'progress', '-t', '/usr/bin/progress', '-o', join(dir, 'shim')]
  const line = 'hostshim: compiling the x86_64 shim with zig (not cached; the first build for a target also builds compiler-rt, ~10 s)...'
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  // A fresh compile cache each time: zig really runs.
  for (const [isTTY, extra, shown] of [[true, [], /^LINE[\s\S]*\r.* done\n$/], [false, [], /^LINE\n$/], [true, ['--quiet'], null], [false, ['--json'], null]] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'hostshim-cli-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const cache = join(dir, 'cache')
    const r = await runCli([...args(dir), ...extra], { isTTY, env: { HOSTSHIM_CACHE: cache } })
    t.equal(r.code, 0, r.stderr)
    t.notMatch(r.stdout, /compiling/, 'never on stdout')
    if (shown) t.match(r.stderr, new RegExp(shown.source.replace('LINE', escaped)), `isTTY ${isTTY}: the line`)
    else t.equal(r.stderr, '', `isTTY ${isTTY} ${extra.join(' ')}: silent`)
    // From the cache: nothing to say.
    const again = await runCli(args(dir), { isTTY, env: { HOSTSHIM_CACHE: cache } })
    t.equal(again.code, 0)
    t.equal(again.stderr, '', 'a cached shim compiles nothing')
  }
})

t.test('user errors are one line, with their exit code and the reason in words', { timeout: COMPILE_TIMEOUT_MS }, async (t) => {
  const gen = ['generate', '--quiet', '-n', 'x', '-t', '/usr/bin/x']
  const cases: [string[], number, RegExp][] = [
    [['generate', '-n', 'x', '-t', 'relative'], EXIT_CODES.config, /^hostshim: target: must be an absolute path, got "relative"\n$/],
    [['inspect', '/nonexistent/file'], EXIT_CODES.io, /^hostshim: cannot read "\/nonexistent\/file": No such file or directory\n$/],
    [['inspect', '/tmp'], EXIT_CODES.io, /^hostshim: cannot read "\/tmp": Is a directory\n$/],
    [['generate', '-c', '/nonexistent/hostshim.json'], EXIT_CODES.io, /^hostshim: cannot read config file "\/nonexistent\/hostshim.json": No such file or directory\n$/],
    [[...gen, '-o', '/dev/null/x'], EXIT_CODES.io, /^hostshim: cannot make the directory of "\/dev\/null\/x": Not a directory\n$/],
    // Node 20's recursive mkdir spins forever here.
    [[...gen, '-o', '/proc/nope/x'], EXIT_CODES.io, /^hostshim: cannot make the directory of "\/proc\/nope\/x": No such file or directory\n$/],
    [['install', '--name', 'x'], EXIT_CODES.usage, /^hostshim: required option '-b, --binary <path>' not specified \(see --help\)\n$/],
    [['generate', '--bogus'], EXIT_CODES.usage, /^hostshim: unknown option '--bogus' \(see --help\)\n$/],
    [['frobnicate'], EXIT_CODES.usage, /^hostshim: unknown command 'frobnicate' \(see --help\)\n$/],
    [['generate', '--mode', 'fast'], EXIT_CODES.usage, /^hostshim: option '--mode <mode>' argument 'fast' is invalid\. Allowed choices are exec, chainload\. \(see --help\)\n$/],
    [['uninstall', '--name', 'x', '--binary', '/nonexistent/x'], EXIT_CODES.io, /^hostshim: cannot uninstall: there is no file at "\/nonexistent\/x"\n$/],
  ]
  for (const [args, code, message] of cases) {
    const started = Date.now()
    const r = await runCli(args)
    t.equal(r.code, code, args.join(' '))
    t.match(r.stderr, message, args.join(' '))
    t.notMatch(r.stderr, /\bE[A-Z]{3,}\b/, 'no errno code in the message')
    t.ok(Date.now() - started < 60_000, `${args.join(' ')}: returns promptly`)
  }
})

t.test('under --json an error is JSON on stdout too, with the system\'s code', async (t) => {
  const r = await runCli(['inspect', '--json', '/tmp'])
  t.equal(r.code, EXIT_CODES.io)
  t.equal(r.stderr, 'hostshim: cannot read "/tmp": Is a directory\n')
  t.same(JSON.parse(r.stdout), { schemaVersion: JSON_SCHEMA_VERSION, error: { exitCode: EXIT_CODES.io, message: 'cannot read "/tmp": Is a directory', errno: 'EISDIR' } })
  const config = await runCli(['generate', '--json', '-n', 'x', '-t', 'relative'])
  t.same(JSON.parse(config.stdout), { schemaVersion: JSON_SCHEMA_VERSION, error: { exitCode: EXIT_CODES.config, message: 'target: must be an absolute path, got "relative"' } })
  const plain = await runCli(['inspect', '/tmp'])
  t.equal(plain.stdout, '', 'without --json, stdout stays empty')
})

t.test('every JSON output carries the schema version', { timeout: COMPILE_TIMEOUT_MS }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostshim-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const shim = join(dir, 'shim')
  const outputs = [
    await runCli(['generate', '--json', '-n', 'x', '-t', '/usr/bin/x', '-o', shim]),
    await runCli(['inspect', '--json', shim]),
    await runCli(['plan', '--root', '/', '-n', 'env', '-t', '/usr/bin/env']),
    await runCli(['doctor', '--json', '/usr/bin/env', '--rootfs', '/']),
  ]
  for (const r of outputs) {
    t.equal(r.code, 0, r.stderr)
    t.equal((JSON.parse(r.stdout) as { schemaVersion: number }).schemaVersion, JSON_SCHEMA_VERSION)
  }
  t.match(JSON.parse(outputs[0]?.stdout ?? ''), { shims: [{ arch: 'x86_64', path: shim }] }, 'generate: the shims under "shims"')
})

t.test('makeDirs: mkdir -p that never spins and names a file in the way', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostshim-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await makeDirs(join(dir, 'a/b/c'))
  await makeDirs(join(dir, 'a/b/c'))
  t.ok((await stat(join(dir, 'a/b/c'))).isDirectory(), 'made, and again is fine')
  await writeFile(join(dir, 'file'), '')
  await t.rejects(makeDirs(join(dir, 'file/x')), { code: 'ENOTDIR' })
  await t.rejects(makeDirs(join(dir, 'file')), { code: 'ENOTDIR' })
  await t.rejects(makeDirs('/proc/nope/x'), { code: 'ENOENT' })
})

t.test('a reader that stops early (| head -1) gets no stack trace, and hostshim exits 0', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const bin = await hostshimCommandDir()
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  // render prints ~60 KiB of C: far more than the pipe holds once head has gone.
  const r = spawnSync('sh', ['-c', 'hostshim render --name x --target /usr/bin/env --arch x86_64 | head -1'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^\/\*\n/)
  t.equal(r.stderr, '', 'nothing on stderr: no EPIPE, no stack')
})
