// The oracle for "direct" runs: what the kernel and the container's glibc
// loader will do with a host binary exec'd inside a container, worked out
// from the files alone, before anything runs.
//
// A cell of the matrix only counts as proof when its direct run fails for the
// reason predicted here (the loader is missing, a library is missing, or a
// symbol version is missing) and the shim run then succeeds. The model reads
// ELF files with binutils' readelf, independent of hostshim's own ELF reader.
//
// The model: the kernel resolves the path and the PT_INTERP in the
// container's view (absolute symlinks restart at the container's `/`, not
// at /run/host); the loader looks for each DT_NEEDED in the needing object's
// DT_RPATH/DT_RUNPATH (with $ORIGIN), then in Debian's default directories;
// then every version a loaded object needs must be defined by the library
// that provides it.

import { lstatSync, readlinkSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { run } from './sys.js'

/** A directory tree as a container sees it: its `/`, its /run/host, extra binds. */
export interface View {
  /** machine path that is the view's `/` */
  readonly root: string
  /** machine path seen at /run/host (null: no /run/host, as on a host) */
  readonly hostRoot: string | null
  /** [machine path, view path] of further binds */
  readonly binds?: readonly (readonly [string, string])[]
}

export const HOST_ROOT = '/run/host'

/** Where Debian's loader looks after RPATH/RUNPATH (ld.so.conf.d and its built-in dirs). */
export const DEFAULT_DIRS = [
  '/usr/local/lib/x86_64-linux-gnu',
  '/usr/local/lib',
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib64',
  '/usr/lib64',
  '/lib',
  '/usr/lib',
] as const

function mounts(view: View): [string, string][] {
  const m: [string, string][] = [['/', view.root]]
  if (view.hostRoot !== null) m.push([HOST_ROOT, view.hostRoot])
  for (const [src, dest] of view.binds ?? []) m.push([dest, src])
  // Longest mount point first: the innermost mount wins.
  return m.sort((a, b) => b[0].length - a[0].length)
}

/** The machine path behind a view path (no symlinks followed). */
export function machinePath(view: View, viewPath: string): string {
  for (const [at, src] of mounts(view)) {
    if (at === '/') return posix.join(src, viewPath)
    if (viewPath === at) return src
    if (viewPath.startsWith(`${at}/`)) return posix.join(src, viewPath.slice(at.length))
  }
  throw new Error('unreachable: / is always mounted')
}

export type Resolved = { readonly viewPath: string; readonly path: string } | { readonly error: string }

/** Resolve a path in the view the way the kernel does for the container: at most 40 links. */
export function resolveInView(view: View, path: string): Resolved {
  const done: string[] = []
  const todo = path.split('/').filter((c) => c !== '')
  let links = 0
  while (todo.length > 0) {
    const c = todo.shift() as string
    if (c === '.') continue
    if (c === '..') {
      done.pop()
      continue
    }
    const viewPath = `/${[...done, c].join('/')}`
    const real = machinePath(view, viewPath)
    let st
    try {
      st = lstatSync(real)
    } catch (error) {
      // A directory that only exists because something is mounted below it
      // (bwrap makes those on its tmpfs).
      if (mounts(view).some(([at]) => at.startsWith(`${viewPath}/`))) {
        done.push(c)
        continue
      }
      return { error: (error as NodeJS.ErrnoException).code ?? 'ENOENT' }
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) return { error: 'ELOOP' }
      const target = readlinkSync(real)
      if (target.startsWith('/')) done.length = 0
      todo.unshift(...target.split('/').filter((x) => x !== ''))
      continue
    }
    if (!st.isDirectory() && todo.length > 0) return { error: 'ENOTDIR' }
    done.push(c)
  }
  const viewPath = `/${done.join('/')}`
  return { viewPath, path: machinePath(view, viewPath) }
}

export interface ElfFacts {
  readonly elf64x86: boolean
  readonly interp: string | null
  readonly needed: string[]
  readonly rpath: string[]
  readonly runpath: string[]
  /** file name -> version names needed from it */
  readonly verneed: Map<string, string[]>
  readonly verdef: Set<string>
}

const factsCache = new Map<string, Promise<ElfFacts | null>>()

/** readelf's view of a file; null when it is not an ELF file. */
export function elfFacts(path: string): Promise<ElfFacts | null> {
  let p = factsCache.get(path)
  if (!p) {
    p = readFacts(path)
    factsCache.set(path, p)
  }
  return p
}

async function readFacts(path: string): Promise<ElfFacts | null> {
  const r = await run('readelf', ['-W', '-h', '-l', '-d', '-V', path], { env: { ...process.env, LC_ALL: 'C' } })
  if (!/^\s*Magic:\s+7f 45 4c 46/m.test(r.stdout)) return null
  const text = r.stdout
  const list = (s: string | undefined) => (s ? s.split(':').filter(Boolean) : [])
  const verneed = new Map<string, string[]>()
  const verdef = new Set<string>()
  let section: 'need' | 'def' | null = null
  let file: string | null = null
  for (const line of text.split('\n')) {
    // A line at column 0 starts a part of readelf's report; indented lines belong to it.
    if (/^\S/.test(line)) {
      section = /^Version needs section/.test(line) ? 'need' : /^Version definition section/.test(line) ? 'def' : null
      file = null
      continue
    }
    if (section === 'need') {
      const f = /File: (\S+)/.exec(line)
      if (f) {
        file = f[1] as string
        if (!verneed.has(file)) verneed.set(file, [])
        continue
      }
      const n = /Name: (\S+)/.exec(line)
      if (n && file) verneed.get(file)?.push(n[1] as string)
    } else if (section === 'def') {
      const n = /Rev: \d+\s+Flags: (\S+)\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)/.exec(line)
      if (n && n[1] !== 'BASE') verdef.add(n[2] as string)
    }
  }
  return {
    elf64x86: /Class:\s+ELF64/.test(text) && /Machine:\s+Advanced Micro Devices X86-64/.test(text),
    interp: /\[Requesting program interpreter: (.*)\]/.exec(text)?.[1] ?? null,
    needed: [...text.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1] as string),
    rpath: list(/\(RPATH\)\s+Library rpath: \[(.*)\]/.exec(text)?.[1]),
    runpath: list(/\(RUNPATH\)\s+Library runpath: \[(.*)\]/.exec(text)?.[1]),
    verneed,
    verdef,
  }
}

export type Prediction =
  | { readonly fails: false; readonly libs: number }
  /** kind: what the kernel or the loader will not find */
  | { readonly fails: true; readonly kind: 'exec' | 'interp' | 'lib' | 'version'; readonly reason: string; readonly versions?: string[] }

/** Would `viewPath` start in `view` without help? */
export async function predictDirect(view: View, viewPath: string): Promise<Prediction> {
  const exe = resolveInView(view, viewPath)
  if ('error' in exe) return { fails: true, kind: 'exec', reason: `${viewPath}: ${exe.error}` }
  const main = await elfFacts(exe.path)
  if (!main) return { fails: true, kind: 'exec', reason: `${viewPath}: not ELF` }
  if (main.interp === null) return { fails: false, libs: 0 }
  const interp = resolveInView(view, main.interp)
  if ('error' in interp) return { fails: true, kind: 'interp', reason: `loader ${main.interp} not found in the container (${interp.error})` }
  const interpFacts = await elfFacts(interp.path)
  if (!interpFacts) return { fails: true, kind: 'interp', reason: `loader ${main.interp} is not ELF` }

  interface Obj {
    readonly viewPath: string
    readonly facts: ElfFacts
  }
  const loaded = new Map<string, Obj>()
  loaded.set(posix.basename(main.interp), { viewPath: interp.viewPath, facts: interpFacts })
  const queue: Obj[] = [{ viewPath: exe.viewPath, facts: main }]
  const all: Obj[] = [...queue]
  const mainRpath = main.runpath.length === 0 ? main.rpath : []
  while (queue.length > 0) {
    const obj = queue.shift() as Obj
    const origin = posix.dirname(obj.viewPath)
    const own = obj.facts.runpath.length > 0 ? obj.facts.runpath : [...obj.facts.rpath, ...mainRpath]
    const dirs = [...own.map((d) => d.replace(/\$(ORIGIN|\{ORIGIN\})/g, origin)), ...DEFAULT_DIRS]
    for (const name of obj.facts.needed) {
      if (loaded.has(name)) continue
      let found: Obj | null = null
      for (const dir of name.includes('/') ? [''] : dirs) {
        const r = resolveInView(view, name.includes('/') ? name : `${dir}/${name}`)
        if ('error' in r) continue
        try {
          if (!statSync(r.path).isFile()) continue
        } catch {
          continue
        }
        const facts = await elfFacts(r.path)
        if (!facts || !facts.elf64x86) continue
        found = { viewPath: r.viewPath, facts }
        break
      }
      if (!found) return { fails: true, kind: 'lib', reason: `${name}: cannot open shared object file` }
      loaded.set(name, found)
      queue.push(found)
      all.push(found)
    }
  }
  const missing: string[] = []
  for (const obj of all) {
    for (const [file, names] of obj.facts.verneed) {
      const lib = loaded.get(file)
      if (!lib) continue
      for (const v of names) if (!lib.facts.verdef.has(v)) missing.push(`${file} ${v}`)
    }
  }
  if (missing.length > 0) {
    const versions = [...new Set(missing.map((m) => m.split(' ')[1] as string))]
    return { fails: true, kind: 'version', reason: `the container's libraries lack ${[...new Set(missing)].join(', ')}`, versions }
  }
  return { fails: false, libs: loaded.size }
}

/** The highest GLIBC_x.y a file needs (e.g. "2.34"), or null. */
export async function glibcNeeded(path: string): Promise<string | null> {
  const facts = await elfFacts(path)
  if (!facts) return null
  const versions = [...facts.verneed.values()]
    .flat()
    .map((v) => /^GLIBC_(\d+(?:\.\d+)*)$/.exec(v)?.[1])
    .filter((v): v is string => v !== undefined)
  versions.sort(compareVersions)
  return versions[versions.length - 1] ?? null
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}
