// Bundle the CLI into one ESM file, dist/hostshim.mjs, the package's bin.
// Runs on `npm ci` (prepare), so a fresh clone has a working `hostshim`.
import { build } from 'esbuild'
import { chmod } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const outfile = `${root}dist/hostshim.mjs`

await build({
  entryPoints: [`${root}launcher/main.ts`],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // commander is CommonJS; give the ESM bundle a require() for it.
  banner: { js: "import { createRequire as __hostshimRequire } from 'node:module'; const require = __hostshimRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
})
await chmod(outfile, 0o755)
