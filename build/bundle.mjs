// Bundle the CLI into single files:
//   dist/hostshim.mjs  ESM, the package's bin; runs on `npm ci` (prepare), so
//                      a fresh clone has a working `hostshim`
//   dist/hostshim.cjs  CommonJS, the entry of the single executable that
//                      build/sea.mjs makes (Node's SEA runs CommonJS only)
// Both carry the built-in example config (examples/toolbox/hostshim.json),
// so neither needs the examples/ directory at run time. Each file is written
// next to its place and renamed into it: a hostshim running from dist/ while
// this runs (tests do) sees the old file or the new one, never half of one.
import { build } from 'esbuild'
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
export const ESM_OUTFILE = `${root}dist/hostshim.mjs`
export const CJS_OUTFILE = `${root}dist/hostshim.cjs`

// JSON.parse checks the file at build time; the text is embedded as it is.
const exampleText = await readFile(`${root}examples/toolbox/hostshim.json`, 'utf8')
JSON.parse(exampleText)

/** esbuild, then the output written atomically, executable. */
async function bundle(options) {
  const result = await build({ ...options, write: false })
  for (const file of result.outputFiles) {
    const tmp = `${file.path}.${process.pid}.tmp`
    // A fresh clone has no dist/ yet.
    await mkdir(dirname(file.path), { recursive: true })
    try {
      await writeFile(tmp, file.contents, { mode: 0o755 })
      await chmod(tmp, 0o755)
      await rename(tmp, file.path)
    } catch (error) {
      await rm(tmp, { force: true })
      throw error
    }
  }
}

const common = {
  entryPoints: [`${root}launcher/main.ts`],
  bundle: true,
  platform: 'node',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
  define: { HOSTSHIM_BUILTIN_EXAMPLE: JSON.stringify(exampleText) },
}

await bundle({
  ...common,
  outfile: ESM_OUTFILE,
  format: 'esm',
  // commander is CommonJS; give the ESM bundle a require() for it.
  banner: { js: "import { createRequire as __hostshimRequire } from 'node:module'; const require = __hostshimRequire(import.meta.url);" },
})

await bundle({
  ...common,
  outfile: CJS_OUTFILE,
  format: 'cjs',
  // import.meta does not exist in CommonJS. The code uses import.meta.url to
  // find files next to itself (zig's npm package, package.json): give it this
  // file's URL. In a single executable __filename is the executable itself.
  define: { ...common.define, 'import.meta.url': '__hostshimImportMetaUrl' },
  banner: { js: "var __hostshimImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
})
