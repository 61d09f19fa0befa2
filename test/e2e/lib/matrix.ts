// The matrix's cells, their verdicts, and the Markdown table README.md shows.

import type { ShimMode } from '../../../launcher/config.js'
import type { Prediction } from './ldso.js'
import type { RunResult } from './sys.js'

/** One program run: every invocation of a target, in order. */
export interface Outcome {
  readonly runs: RunResult[]
  /** every invocation exited 0 */
  readonly ok: boolean
}

export interface CellResult {
  readonly container: string
  readonly host: string
  readonly target: string
  /** how the shim started the host loader: exec'd it, or mapped it into its own process */
  readonly shimMode: ShimMode
  /** the target does not exist on this host: nothing ran */
  readonly na?: string
  readonly prediction?: Prediction
  readonly direct?: Outcome
  readonly shim?: Outcome
  /** the shim's mode from its debug output: container or host */
  readonly mode?: string
  /** the direct run failed and the shim run matched the native run */
  readonly proof: boolean
  /** the shim run's output (exit status, stdout, stderr) equals the native run's */
  readonly shimMatchesNative: boolean
  readonly directMatchesNative: boolean
}

export function outcome(runs: RunResult[]): Outcome {
  return { runs, ok: runs.every((r) => r.code === 0) }
}

/** Same exit status, stdout and stderr, invocation by invocation. */
export function sameOutput(a: Outcome, b: Outcome): boolean {
  return (
    a.runs.length === b.runs.length &&
    a.runs.every((r, i) => {
      const s = b.runs[i] as RunResult
      return r.code === s.code && r.stdout === s.stdout && r.stderr === s.stderr
    })
  )
}

/** The failing run's reason, in the words of whoever refused (kernel, loader). */
export function failureText(o: Outcome): string {
  const r = o.runs.find((x) => x.code !== 0) ?? o.runs[0]
  if (!r) return 'no run'
  const version = /version `([^']+)' not found/.exec(r.stderr)
  if (version) return `\`version ${version[1]} not found\``
  const lib = /([^\s:]+): cannot open shared object file/.exec(r.stderr)
  if (lib) return `\`${lib[1]}: cannot open shared object file\``
  if (r.spawnError === 'ENOENT' || /No such file or directory|not found/.test(r.stderr)) return '`not found` (ENOENT)'
  const last = r.stderr.trim().split('\n').pop() ?? ''
  return `exit ${r.code}: \`${last.slice(0, 80)}\``
}

function directCell(c: CellResult): string {
  if (c.na) return 'n/a'
  if (!c.direct) return '?'
  if (c.direct.ok) return c.directMatchesNative ? 'works (not counted as proof)' : 'works, but output differs from native'
  return `fails: ${failureText(c.direct)}`
}

function shimCell(c: CellResult): string {
  if (c.na) return `n/a (${c.na})`
  if (!c.shim) return '?'
  if (!c.shim.ok) return `**FAILS**: ${failureText(c.shim)}`
  const same = c.shimMatchesNative ? 'same output as native' : '**output differs from native**'
  return `${c.proof ? '**works**' : 'works'}, ${same} (${c.mode ?? '?'} mode)`
}

export function markdownTable(cells: readonly CellResult[]): string {
  const rows = [
    '| container | host (at /run/host) | target | direct | shim | through the shim |',
    '|---|---|---|---|---|---|',
    ...cells.map((c) => `| ${c.container} | ${c.host} | ${c.target} | ${directCell(c)} | ${c.shimMode} | ${shimCell(c)} |`),
  ]
  return `${rows.join('\n')}\n`
}
