// binutils' readelf, the outside reference the ELF tests compare with. It is
// required, not optional: .ci/setup installs binutils, and a test that
// quietly skipped its comparison would pass with the feature broken.

import { execFileSync } from 'node:child_process'

export function readelf(file: string, ...flags: string[]): string {
  try {
    return execFileSync('readelf', [...flags, file], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
      maxBuffer: 256 * 1024 * 1024,
    })
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new Error('readelf (binutils) is required by this test; .ci/setup installs it')
    throw new Error(`readelf ${flags.join(' ')} ${file}: ${e.stderr ?? e.message}`)
  }
}

/** `readelf -h`'s fields, by name. */
export function readelfHeader(file: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const m of readelf(file, '-hW').matchAll(/^\s+([^:\n]+):\s*(.*)$/gm)) fields.set((m[1] as string).trim(), (m[2] as string).trim())
  return fields
}
