// Running hostshim's CLI from tests: in-process through main() (fast, exit
// code and output captured), or as a command for shell scripts (the examples
// call `hostshim` like a user would).

import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { main } from '../../launcher/cli.js'
import { TEST_CACHE_DIR } from './shims.js'

/** The repository's top directory. */
export const REPO = fileURLToPath(new URL('../../', import.meta.url))

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `hostshim ARGS` in this process; the compile cache is the tests' one unless env says otherwise. */
export async function runCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; isTTY?: boolean } = {}): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    isTTY: options.isTTY ?? false,
    env: { ...process.env, HOSTSHIM_CACHE: TEST_CACHE_DIR, ...options.env },
    cwd: options.cwd ?? process.cwd(),
  })
  return { code, stdout, stderr }
}

/**
 * A directory with an executable `hostshim` that runs this checkout's CLI
 * from source (build/run-ts.mjs), for scripts that call `hostshim`. Put the
 * directory first on PATH.
 */
export async function hostshimCommandDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostshim-cmd-'))
  // NODE_OPTIONS cleared: tap's coverage hooks would record the temporary
  // bundle run-ts makes, and its source map would muddle the coverage of the sources.
  const script = `#!/bin/sh\nNODE_OPTIONS= exec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO, 'build/run-ts.mjs'))} ${JSON.stringify(join(REPO, 'launcher/main.ts'))} "$@"\n`
  await writeFile(join(dir, 'hostshim'), script)
  await chmod(join(dir, 'hostshim'), 0o755)
  return dir
}

/** dist/hostshim.mjs, rebuilt when a source file is newer (npm ci builds it; `prepare`). */
export function bundledCli(): string {
  const dist = join(REPO, 'dist/hostshim.mjs')
  const newest = (dir: string): number =>
    Math.max(...readdirSync(join(REPO, dir)).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(REPO, dir, f)).mtimeMs))
  let built = 0
  try {
    built = statSync(dist).mtimeMs
  } catch {
    // not built yet
  }
  if (built < Math.max(newest('launcher'), newest('shim'))) {
    const r = spawnSync(process.execPath, [join(REPO, 'build/bundle.mjs')], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`node build/bundle.mjs failed: ${r.stderr}`)
  }
  return dist
}
