// The coverage policy, enforced after `tap`:
// - the pure core (config, ELF reader, plan model, C emitter and template,
//   marks, inspect) must stay at >= 95% of lines and >= 90% of branches:
//   it is what the unit tests are for;
// - everything else (CLI, toolchain, install: I/O that the integration tests
//   drive through child processes, which coverage cannot see) is reported,
//   not gated.
// The C shim itself is not JavaScript: it is covered by the container,
// differential and fuzz tests instead.
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { relative } from 'node:path'

const CORE = [
  'launcher/config.ts',
  'launcher/elf.ts',
  'launcher/plan.ts',
  'launcher/mark.ts',
  'launcher/inspect.ts',
  'shim/emit.ts',
  'shim/template.ts',
]
const MIN_LINES = 95
const MIN_BRANCHES = 90

execFileSync('npx', ['tap', 'report', 'json-summary'], { stdio: ['ignore', 'ignore', 'inherit'] })
const summary = JSON.parse(readFileSync('.tap/report/coverage-summary.json', 'utf8'))
const byFile = new Map(Object.entries(summary).map(([file, data]) => [relative(process.cwd(), file), data]))
const failures = []
for (const file of CORE) {
  const data = byFile.get(file)
  if (!data) {
    failures.push(`${file}: no coverage recorded (no unit test imports it?)`)
    continue
  }
  const lines = data.lines.pct
  const branches = data.branches.pct
  const ok = lines >= MIN_LINES && branches >= MIN_BRANCHES
  console.log(`coverage ${ok ? 'ok  ' : 'LOW '} ${file}: lines ${lines}%, branches ${branches}%`)
  if (!ok) failures.push(`${file}: lines ${lines}% (min ${MIN_LINES}), branches ${branches}% (min ${MIN_BRANCHES})`)
}
if (failures.length) {
  console.error(`coverage gate failed:\n  ${failures.join('\n  ')}`)
  process.exit(1)
}
