// The command line's promises: help with examples for every command, exit
// codes documented the same way in --help and the README, progress on a
// terminal only, and one-line errors.

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { EXIT_CODE_HELP, buildProgram } from '../launcher/cli.js'
import { EXIT_CODES } from '../launcher/errors.js'
import { REPO, runCli } from './lib/cli.js'
import { COMPILE_TIMEOUT_MS } from './lib/shims.js'

const commands = buildProgram({ stdout: () => undefined, stderr: () => undefined, isTTY: false, env: {}, cwd: '/' }).commands.map((c) => c.name())

t.test('every command has --help with examples', async (t) => {
  t.same(commands, ['generate', 'render', 'inspect', 'plan', 'install', 'uninstall', 'doctor'])
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

t.test('zig\'s progress goes to a terminal, and only there', { timeout: COMPILE_TIMEOUT_MS }, async (t) => {
  const args = (dir: string) => ['generate', '-n', 'progress', '-t', '/usr/bin/progress', '-o', join(dir, 'shim')]
  // A fresh compile cache each time: zig really runs.
  for (const [isTTY, extra, shown] of [[true, [], true], [false, [], false], [true, ['--quiet'], false], [true, ['--json'], false]] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'hostshim-cli-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const r = await runCli([...args(dir), ...extra], { isTTY, env: { HOSTSHIM_CACHE: join(dir, 'cache') } })
    t.equal(r.code, 0, r.stderr)
    if (shown) t.match(r.stderr, /^hostshim: compiling the x86_64 shim with zig \(the first build for a target also builds its C library\)\.\.\.[\s\S]*\r.* done\n$/)
    else t.equal(r.stderr, '', `isTTY ${isTTY} ${extra.join(' ')}: silent`)
  }
})

t.test('user errors are one line, with their exit code', async (t) => {
  const cases: [string[], number, RegExp][] = [
    [['generate', '-n', 'x', '-t', 'relative'], EXIT_CODES.config, /^hostshim: target: must be an absolute path, got "relative"\n$/],
    [['inspect', '/nonexistent/file'], EXIT_CODES.io, /^hostshim: cannot read "\/nonexistent\/file": ENOENT\n$/],
    [['install', '--name', 'x'], EXIT_CODES.usage, /required option '-b, --binary <path>' not specified/],
    [['uninstall', '--name', 'x', '--binary', '/nonexistent/x'], EXIT_CODES.io, /^hostshim: cannot uninstall: there is no file at "\/nonexistent\/x"\n$/],
  ]
  for (const [args, code, message] of cases) {
    const r = await runCli(args)
    t.equal(r.code, code, args.join(' '))
    t.match(r.stderr, message)
  }
})
