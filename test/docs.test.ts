// The documentation, run: every ```sh test block of README.md and examples/
// is run word for word, so the commands the docs show cannot drift from the
// tool. Blocks without the mark need what CI cannot give (podman images, a
// registry, npm link into the machine's prefix); the tests of the examples
// cover those parts another way.
//
// Each file's blocks run in order in one `sh -e` (a later block may use a
// function an earlier one defined), in a scratch directory outside /tmp
// that has the repository's examples/ and a `hostshim` command on PATH, in
// a private mount namespace whose /tmp is a fresh tmpfs (try-it.md works in
// /tmp/try; a checkout under /tmp is bound back in at its own path). Nothing
// outside the scratch directory changes.
//
// Also: the package's "bin" works after `npm link`, into a scratch prefix.

import { spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { REPO } from './lib/cli.js'
import { assertNoStrayMounts } from './lib/container.js'
import { COMPILE_TIMEOUT_MS } from './lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 3)

/** The files with runnable blocks, and how many each has: the extraction must find exactly these. */
const RUNNABLE: Record<string, { blocks: number; stdout: RegExp }> = {
  'README.md': { blocks: 1, stdout: /^hostshim: "[^"]+": .*\nzig: "[^"]+": / },
  'examples/entrypoint/README.md': { blocks: 1, stdout: /^x86_64 \d+ [0-9a-f]{64} \S+\/rootfs\/entrypoint\nhostshim runs sh from the container\n$/ },
  'examples/try-it.md': { blocks: 3, stdout: /^x86_64 \d+ [0-9a-f]{64} \/tmp\/try\/ls\n[\s\S]*\nls \(GNU coreutils\) / },
}

/** The ```sh test blocks of a Markdown text. */
export function runnableBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh test\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string)
}

const scratch = await mkdtemp('/var/tmp/hostshim-docs-')
t.teardown(() => rm(scratch, { recursive: true, force: true }))

// `hostshim` from this checkout's sources, as test/lib/cli.ts makes it, but outside /tmp.
const bin = join(scratch, 'bin')
await mkdir(bin)
await writeFile(
  join(bin, 'hostshim'),
  `#!/bin/sh\nNODE_OPTIONS= exec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, 'build/run-ts.mjs'))} ${JSON.stringify(join(REPO, 'launcher/main.ts'))} "$@"\n`,
)
await chmod(join(bin, 'hostshim'), 0o755)

t.test('every file with runnable blocks is known, and every known one has them', async (t) => {
  const files = ['README.md', ...(await listMarkdown(join(REPO, 'examples'))).map((f) => `examples/${f}`)]
  const found: Record<string, number> = {}
  for (const f of files) {
    const n = runnableBlocks(await readFile(join(REPO, f), 'utf8')).length
    if (n > 0) found[f] = n
  }
  t.same(found, Object.fromEntries(Object.entries(RUNNABLE).map(([f, r]) => [f, r.blocks])))
})

async function listMarkdown(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises')
  return (await readdir(dir, { recursive: true })).map(String).filter((f) => f.endsWith('.md')).sort()
}

for (const [file, expected] of Object.entries(RUNNABLE)) {
  t.test(`${file}: its sh test blocks run as written`, async (t) => {
    const blocks = runnableBlocks(await readFile(join(REPO, file), 'utf8'))
    t.equal(blocks.length, expected.blocks)
    const dir = join(scratch, file.replace(/\W+/g, '-'))
    await mkdir(dir)
    await symlink(join(REPO, 'examples'), join(dir, 'examples'))
    const script = join(dir, 'blocks.sh')
    await writeFile(script, `set -e\n${blocks.join('\n')}`)
    // A fresh /tmp; a checkout that lives under /tmp (a CI clone may) is bound back in at its own path.
    const oldTmp = join(dir, 'old-tmp')
    await mkdir(oldTmp)
    const setup = [
      'mount --bind /tmp "$OLD_TMP"',
      'mount -t tmpfs tmpfs /tmp',
      'case "$REPO/" in /tmp/*) mkdir -p "$REPO" && mount --bind "$OLD_TMP${REPO#/tmp}" "$REPO";; esac',
      'exec sh "$0"',
    ].join(' && ')
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--fork', 'sh', '-c', setup, script], {
      cwd: dir,
      encoding: 'utf8',
      timeout: COMPILE_TIMEOUT_MS,
      env: {
        PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
        HOME: process.env.HOME ?? '/root',
        HOSTSHIM_CACHE: join(scratch, 'cache'),
        LC_ALL: 'C',
        OLD_TMP: oldTmp,
        REPO,
      },
    })
    t.equal(r.status, 0, `${file}:\n${r.stderr}`)
    t.match(r.stdout, expected.stdout)
    assertNoStrayMounts(t, [scratch])
  })
}

t.test('package.json "bin": after npm link (into a scratch prefix) `hostshim` runs', async (t) => {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.same(Object.keys(pkg.bin), ['hostshim'])
  const prefix = join(scratch, 'prefix')
  const env = { ...process.env, npm_config_prefix: prefix, NODE_OPTIONS: '' }
  const link = spawnSync('npm', ['link', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 })
  t.equal(link.status, 0, link.stderr)
  const run = (args: string[]) => spawnSync(join(prefix, 'bin/hostshim'), args, { env: { ...env, PATH: `${join(prefix, 'bin')}:/usr/bin:/bin` }, encoding: 'utf8' })
  const version = run(['--version'])
  t.equal(version.status, 0, version.stderr)
  t.equal(version.stdout.trim(), (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version)
  const help = run(['--help'])
  t.match(help.stdout, /\n {2}hostshim generate /, 'the linked command shows the same spelling as the docs')
})

t.test('one spelling of the command: `hostshim`, in the docs and in every --help', async (t) => {
  const texts = ['README.md', ...(await listMarkdown(join(REPO, 'examples'))).map((f) => `examples/${f}`), 'examples/containerfile/install-host-tools.sh', 'examples/toolbox/meson-install.sh', 'examples/toolbox/meson.build', 'examples/toolbox/shim/meson.build', 'examples/toolbox/toolbox.spec', 'examples/toolbox/deb/build-deb.sh']
  for (const f of texts) t.notMatch(await readFile(join(REPO, f), 'utf8'), /npx hostshim|node dist\/hostshim|hostshim\.mjs (generate|install|doctor|inspect|render|plan|cache)/, f)
  const { buildProgram } = await import('../launcher/cli.js')
  const program = buildProgram({ stdout: () => undefined, stderr: () => undefined, isTTY: false, env: {}, cwd: '/' })
  for (const cmd of [program, ...program.commands]) {
    let help = ''
    cmd.configureOutput({ writeOut: (s) => void (help += s) })
    cmd.outputHelp()
    const examples = help.slice(help.indexOf('\nExamples:\n'))
    t.ok(help.includes('\nExamples:\n'), `${cmd.name()} --help has examples`)
    for (const line of examples.split('\n').slice(2).filter(Boolean)) t.match(line, /^ {2}hostshim /, `${cmd.name()}: ${line.trim()}`)
  }
})
