// The environment policy (README "Safety", shim/README.md section 7): the
// shim passes the caller's environment on unchanged, to the program and so to
// its children. What the host's loader then does with the loader variables
// set in the container, shown with the libraries the host program really
// maps (/proc/self/maps) and the loader's own debug output:
//
//   - nothing set: every library comes from the host root;
//   - LD_LIBRARY_PATH: --library-path wins for the host program; the variable
//     still reaches it and its children unchanged;
//   - LD_PRELOAD, LD_AUDIT, and the container's /etc/ld.so.preload: the host
//     loader loads those container files into the host program. A known
//     limit: no loader option undoes them (--preload '' and --audit '' add to
//     the lists, shown below), so only changing the environment could, and
//     the shim does not. A config that must never load them sets them empty
//     (env: { "LD_PRELOAD": "", "LD_AUDIT": "" }), shown below too;
//   - GLIBC_TUNABLES: the host glibc takes them.
//
// The variables are set inside the container (busybox env), never in bwrap's
// own environment: bwrap is a dynamic host program and would load them itself.
//
// Each case runs in both modes, exec and chainload; the only difference: a
// chainload shim stays mapped in the program's process (it is its
// /proc/self/exe), the one file there not under the host root.

import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  CC,
  CONTAINER_ENV,
  assertNoStrayMounts,
  makeBusyboxRoot,
  runInContainer,
  type Bind,
} from '../lib/container.js'
import type { ShimMode } from '../../launcher/config.js'
import { fakeLoader, planTree, shimConfig } from '../lib/hosttree.js'
import { COMPILE_TIMEOUT_MS, MODES, buildShim, suiteScratch, type ShimFields } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 2)

const scratch = await suiteScratch(t, 'environment')

const root = await makeBusyboxRoot(join(scratch, 'root'))
// Container libraries: built here with this machine's cc, so they load into a host program.
mkdirSync(join(root, 'opt/lib'), { recursive: true })
function cc(name: string, source: string): void {
  const c = join(scratch, `${name}.c`)
  writeFileSync(c, source)
  const r = spawnSync(CC, ['-shared', '-fPIC', '-o', join(root, 'opt', `${name}.so`), c], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`cc ${name}: ${r.stderr}`)
}
cc('libpre', '#include <unistd.h>\n__attribute__((constructor)) static void hello(void) { (void)!write(2, "container preload ran\\n", 22); }\n')
cc('libaud', 'unsigned int la_version(unsigned int v) { return v; }\n')
// A decoy libc.so.6 on the container's LD_LIBRARY_PATH: loading it would fail the program.
writeFileSync(join(root, 'opt/lib/libc.so.6'), fakeLoader())

const SHIMS: Record<string, ShimFields> = {
  hcat: { name: 'hcat', target: '/bin/cat' },
  hsh: { name: 'hsh', target: '/bin/sh' },
  // The opt-out: a shim whose program (and children) never get the container's preloads.
  hcatclean: { name: 'hcatclean', target: '/bin/cat', env: { LD_PRELOAD: '', LD_AUDIT: '' } },
  // The same, printing the environment the program has (and its children get).
  henvclean: { name: 'henvclean', target: '/usr/bin/env', env: { LD_PRELOAD: '', LD_AUDIT: '' } },
  // The host loader itself as the target: static, exec'd directly.
  hld: { name: 'hld', target: '/lib64/ld-linux-x86-64.so.2' },
}
/** Each mode's shims, at /usr/bin/NAME. */
const binds = {} as Record<ShimMode, Bind[]>
for (const mode of MODES) {
  binds[mode] = []
  for (const [name, fields] of Object.entries(SHIMS)) binds[mode].push([await buildShim(fields, mode), `/usr/bin/${name}`, 'ro'])
}

const text = (b: Buffer) => b.toString('latin1')

/** Run `argv` in the container, with `shims` bound, with `vars` set inside it (busybox env). */
function withVars(shims: readonly Bind[], vars: Record<string, string>, argv: readonly string[], where = root) {
  const sets = Object.entries(vars).map(([k, v]) => `${k}=${v}`)
  return runInContainer({ root: where, host: '/', binds: shims, argv: ['/bin/env', ...sets, ...argv], env: { ...CONTAINER_ENV } })
}

/** The files a process has mapped: its libraries, the loader, the program. */
function mappedFiles(maps: string): string[] {
  const files = new Set<string>()
  for (const line of maps.split('\n')) {
    const path = line.split(/\s+/)[5]
    if (path?.startsWith('/')) files.add(path)
  }
  return [...files].sort()
}

/** The host cat, through the `mode` shim named `shim`, shows its own maps, then its environment (NUL-separated). */
function catSelf(mode: ShimMode, shim: string, vars: Record<string, string>, where = root) {
  const r = withVars(binds[mode], vars, [`/usr/bin/${shim}`, '/proc/self/maps', '/proc/self/environ'], where)
  const out = text(r.stdout)
  const split = out.lastIndexOf('\n') + 1
  return { status: r.status, stderr: text(r.stderr), files: mappedFiles(out.slice(0, split)), environ: out.slice(split).split('\0').filter(Boolean) }
}

/** The mapped files not under /run/host. */
const underHostRoot = (files: string[]) => files.filter((f) => !f.startsWith('/run/host/'))
/** What underHostRoot leaves of a host program started by the shim `/usr/bin/NAME`: in chainload mode, the shim itself. */
const shimMapped = (mode: ShimMode, name: string) => (mode === 'chainload' ? [`/usr/bin/${name}`] : [])

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    t.test('a normal host program maps only host files', async (t) => {
      const r = catSelf(mode, 'hcat', {})
      t.equal(r.status, 0)
      t.same(underHostRoot(r.files), shimMapped(mode, 'hcat'), `every mapped file is under /run/host${mode === 'chainload' ? ', but the shim' : ''}: ${r.files.join(' ')}`)
      t.ok(r.files.some((f) => /\/libc\.so\.6$/.test(f)), 'libc among them')
      t.ok(r.files.some((f) => /\/ld-linux-x86-64\.so\.2$/.test(f)), 'the loader among them')
      // The loader's own account: every object it initialised.
      const debug = withVars(binds[mode], { LD_DEBUG: 'files' }, ['/usr/bin/hcat', '/dev/null'])
      const inits = text(debug.stderr).split('\n').map((l) => /calling init: (\S+)/.exec(l)?.[1]).filter((p): p is string => p !== undefined)
      t.ok(inits.length > 0, `LD_DEBUG=files: ${inits.join(' ')}`)
      t.same(underHostRoot(inits), [], 'every object the loader initialised is under /run/host')
    })

    t.test('LD_LIBRARY_PATH: --library-path wins; the variable is passed on unchanged', async (t) => {
      const r = catSelf(mode, 'hcat', { LD_LIBRARY_PATH: '/opt/lib' })
      t.equal(r.status, 0, 'the decoy /opt/lib/libc.so.6 was not loaded')
      t.same(underHostRoot(r.files), shimMapped(mode, 'hcat'), `every mapped file is under /run/host${mode === 'chainload' ? ', but the shim' : ''}`)
      t.ok(r.environ.includes('LD_LIBRARY_PATH=/opt/lib'), 'the program has it, unchanged')
      const child = withVars(binds[mode], { LD_LIBRARY_PATH: '/opt/lib' }, ['/usr/bin/hsh', '-c', 'exec /bin/env'])
      t.match(text(child.stdout), /^LD_LIBRARY_PATH=\/opt\/lib$/m, 'and a child of the host program (busybox env) inherits it')
    })

    t.test('LD_PRELOAD and LD_AUDIT name container files, and the host loader loads them (a known limit)', async (t) => {
      const pre = catSelf(mode, 'hcat', { LD_PRELOAD: '/opt/libpre.so' })
      t.equal(pre.status, 0)
      t.ok(pre.files.includes('/opt/libpre.so'), 'LD_PRELOAD: the container\'s /opt/libpre.so is mapped into the host cat')
      t.match(pre.stderr, 'container preload ran', 'and its constructor ran')
      t.ok(pre.environ.includes('LD_PRELOAD=/opt/libpre.so'), 'the environment is unchanged')
      const child = withVars(binds[mode], { LD_PRELOAD: '/opt/libpre.so' }, ['/usr/bin/hsh', '-c', 'exec /bin/env'])
      t.match(text(child.stdout), /^LD_PRELOAD=\/opt\/libpre.so$/m, 'children inherit it')

      const aud = catSelf(mode, 'hcat', { LD_AUDIT: '/opt/libaud.so' })
      t.equal(aud.status, 0)
      t.ok(aud.files.includes('/opt/libaud.so'), 'LD_AUDIT: the container\'s /opt/libaud.so is mapped too')
    })

    t.test('the opt-out: env { LD_PRELOAD: "", LD_AUDIT: "" } in the config', async (t) => {
      const r = catSelf(mode, 'hcatclean', { LD_PRELOAD: '/opt/libpre.so', LD_AUDIT: '/opt/libaud.so' })
      t.equal(r.status, 0)
      t.same(underHostRoot(r.files), shimMapped(mode, 'hcatclean'), `only host files are mapped${mode === 'chainload' ? ', and the shim' : ''}`)
      t.notMatch(r.stderr, 'container preload ran')
      const env = text(withVars(binds[mode], { LD_PRELOAD: '/opt/libpre.so', LD_AUDIT: '/opt/libaud.so' }, ['/usr/bin/henvclean']).stdout).split('\n')
      t.same(env.filter((e) => /^LD_(PRELOAD|AUDIT)=/.test(e)), ['LD_PRELOAD=', 'LD_AUDIT='], 'the program (and its children) get them empty: that is the price')
      // /proc/PID/environ is the environment the kernel last exec'd the process with.
      if (mode === 'exec') {
        t.ok(r.environ.includes('LD_PRELOAD=') && r.environ.includes('LD_AUDIT='), '/proc/self/environ: the loader\'s, with them empty')
      } else {
        t.same(
          r.environ.filter((e) => /^LD_(PRELOAD|AUDIT)=/.test(e)),
          ['LD_PRELOAD=/opt/libpre.so', 'LD_AUDIT=/opt/libaud.so'],
          '/proc/self/environ: the caller\'s, as the kernel exec\'d the shim (like /proc/self/cmdline), not the program\'s',
        )
      }
    })

    t.test('the container\'s /etc/ld.so.preload is read by the host loader (a known limit)', async (t) => {
      const other = await makeBusyboxRoot(join(scratch, `root-preload-${mode}`))
      mkdirSync(join(other, 'opt'), { recursive: true })
      mkdirSync(join(other, 'etc'), { recursive: true })
      writeFileSync(join(other, 'etc/ld.so.preload'), '/opt/libpre.so\n')
      copyFileSync(join(root, 'opt/libpre.so'), join(other, 'opt/libpre.so'))
      const r = catSelf(mode, 'hcat', {}, other)
      t.equal(r.status, 0)
      t.ok(r.files.includes('/opt/libpre.so'), 'a file named there is mapped into the host program')
    })

    t.test('GLIBC_TUNABLES reaches the host glibc', async (t) => {
      const tunables = (vars: Record<string, string>) => text(withVars(binds[mode], vars, ['/usr/bin/hld', '--list-tunables']).stdout)
      t.match(tunables({}), /^glibc\.malloc\.check: 0 /m, 'the default')
      t.match(tunables({ GLIBC_TUNABLES: 'glibc.malloc.check=3' }), /^glibc\.malloc\.check: 3 /m, 'set in the container, taken by the host loader')
    })
  })
}

t.test('no loader option undoes them: --preload \'\' and --audit \'\' add to the lists', async (t) => {
  const config = shimConfig(SHIMS.hcat as ShimFields)
  const plan = planTree(config, '/', ['/usr/bin/hcat'], 'container')
  if (!plan.ok || plan.loader === null || plan.libraryPath === null) throw new Error('no loader plan for /bin/cat')
  const loader = (option: string, vars: Record<string, string>) => {
    const r = withVars([], vars, [plan.loader as string, option, '', '--inhibit-cache', '--library-path', plan.libraryPath as string, '/run/host/bin/cat', '/proc/self/maps'])
    t.equal(r.status, 0)
    return mappedFiles(text(r.stdout))
  }
  t.ok(loader('--preload', { LD_PRELOAD: '/opt/libpre.so' }).includes('/opt/libpre.so'), 'LD_PRELOAD is still loaded with --preload \'\'')
  t.ok(loader('--audit', { LD_AUDIT: '/opt/libaud.so' }).includes('/opt/libaud.so'), 'LD_AUDIT is still loaded with --audit \'\'')
})

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
