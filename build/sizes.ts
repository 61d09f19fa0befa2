// `npm run sizes`: build the built-in example shim (examples/toolbox) for
// every architecture and print a markdown table of their sizes.
//
// It goes through the same path as `hostshim generate --arch all`: the
// config, the content-addressed cache (HOSTSHIM_CACHE, else
// ~/.cache/hostshim), zig, and the verification of each shim. The shims are
// written to a temp dir that is removed afterwards; only the table remains.
// The first run on a fresh machine builds musl once per target (about 20 s
// each); later runs are answered from the caches.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ARCHES } from '../launcher/arch.js'
import { loadConfig } from '../launcher/config-file.js'
import { generate } from '../launcher/generate.js'
import { defaultCacheDir, loadZig } from '../launcher/toolchain.js'

const out = await mkdtemp(join(tmpdir(), 'hostshim-sizes-'))
try {
  const config = loadConfig({ arch: 'all', outDir: out })
  const zig = await loadZig()
  const started = performance.now()
  const built = await generate(config, {
    toolchain: zig,
    cacheDir: defaultCacheDir(),
    onCompile: (arch) => process.stderr.write(`sizes: compiling ${arch.name} (${arch.zigTarget})\n`),
  })
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  const compiled = built.filter((b) => !b.cached).length
  const rows = built.map((b) => {
    const arch = ARCHES[b.arch]
    const elf = `ELF${arch.elfClass === 2 ? 64 : 32} ${arch.byteOrder === 1 ? 'LE' : 'BE'}`
    return [b.arch, `\`${arch.zigTarget}\``, elf, b.mode, String(b.bytes), (b.bytes / 1024).toFixed(1)]
  })
  const header = ['architecture', 'zig target', 'ELF', 'mode', 'bytes', 'KiB']
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  process.stdout.write(
    [
      `Shim sizes for the ${config.name} example (zig ${zig.version}):`,
      '',
      line(header),
      line(header.map((h, i) => (i >= 4 ? '---:' : '---'))),
      ...rows.map(line),
      '',
    ].join('\n'),
  )
  process.stderr.write(`sizes: ${built.length} shims in ${seconds} s (${compiled} compiled, ${built.length - compiled} from the cache)\n`)
} finally {
  await rm(out, { recursive: true, force: true })
}
