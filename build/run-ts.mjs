// Run a TypeScript entry point: `node build/run-ts.mjs FILE.ts [ARGS...]`.
//
// esbuild bundles FILE.ts (and the project's .ts files it imports) into one
// ESM file under os.tmpdir(); node runs it with ARGS, the same stdio, and
// its exit code or signal is ours. Packages stay external: the temp directory
// gets a node_modules symlink to the project's, so they resolve as usual.
// import.meta.url/dirname/filename in project files keep naming the .ts
// source, not the temp bundle, so code that finds files next to itself works.
import { build } from 'esbuild'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { constants, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const [entry, ...args] = process.argv.slice(2)
if (entry === undefined) {
  console.error('usage: node build/run-ts.mjs FILE.ts [ARGS...]')
  process.exit(2)
}
const root = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'hostshim-run-'))
const cleanup = () => rmSync(dir, { recursive: true, force: true })
const outfile = join(dir, 'main.mjs')

const importMeta = {
  name: 'import-meta',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?ts$/ }, (a) => {
      const url = pathToFileURL(a.path).href
      const meta = { url: JSON.stringify(url), dirname: JSON.stringify(dirname(a.path)), filename: JSON.stringify(a.path) }
      const contents = readFileSync(a.path, 'utf8').replace(/\bimport\.meta\.(url|dirname|filename)\b/g, (_, k) => meta[k])
      return { contents, loader: 'ts' }
    })
  },
}

try {
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  await build({
    entryPoints: [resolve(entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    sourcemap: 'inline',
    plugins: [importMeta],
    // CommonJS packages bundled or required by the code need a require().
    banner: { js: "import { createRequire as __runTsRequire } from 'node:module'; const require = __runTsRequire(import.meta.url);" },
    logLevel: 'warning',
  })
} catch {
  // esbuild has printed the errors.
  cleanup()
  process.exit(1)
}

const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], { stdio: 'inherit' })
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
child.on('error', (error) => {
  console.error(`run-ts: cannot run node: ${error.message}`)
  cleanup()
  process.exit(1)
})
child.on('exit', (code, signal) => {
  cleanup()
  if (signal) {
    // Die of the same signal; where node ignores it (SIGPIPE), exit as a shell would.
    process.removeAllListeners(signal)
    process.kill(process.pid, signal)
    process.exit(128 + (constants.signals[signal] ?? 0))
  } else {
    process.exit(code ?? 1)
  }
})
