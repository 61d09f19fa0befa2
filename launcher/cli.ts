// The command line: parse, call the core, print. No work happens here.

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { ARCH_NAMES } from './arch.js'
import { loadConfig, type ConfigFlags } from './config-file.js'
import { EXIT_CODES, HostshimError, IoError, UsageError, q } from './errors.js'
import { generate, renderAll, outputPaths } from './generate.js'
import { inspectFile, formatInspect } from './inspect.js'
import { planForRoot } from './plan-cli.js'
import { defaultCacheDir, loadZig, writeAtomic } from './toolchain.js'
import { VERSION } from './version.js'

export interface Io {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly isTTY: boolean
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

/** The options every command that builds a config accepts. */
function configOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'JSON config file (fields: name, target, hostRoot, libDirs, arch, argv0, debugEnv, env, output, outDir)')
    .option('-n, --name <name>', 'program name, used in messages and file names')
    .option('-t, --target <path>', 'absolute path of the real binary on the host (need not exist here)')
    .option('--host-root <dir>', 'where containers see the host\'s root', '/run/host')
    .option('-L, --lib-dir <dir>', 'extra host library directory (repeatable)', collect)
    .option('-a, --arch <list>', `architectures: ${ARCH_NAMES.join(', ')}, a comma list, or all`)
    .option('--no-argv0', 'never pass --argv0 to the host loader')
    .option('--debug-env <name>', 'variable that turns on the shim\'s debug output', 'HOSTSHIM_DEBUG')
    .option('-e, --env <NAME=VALUE>', 'set a variable for the program (repeatable)', collect)
}

/** commander fills defaults; only flags the user gave may override a config file. */
function givenFlags(cmd: Command): ConfigFlags {
  const opts = cmd.opts<ConfigFlags>()
  const flags: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(opts)) {
    if (cmd.getOptionValueSource(key) === 'cli') flags[key] = value
  }
  return flags as ConfigFlags
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}

export function buildProgram(io: Io): Command {
  const program = new Command('hostshim')
    .description('Generate tiny static launchers that run a host binary through the host\'s own dynamic loader inside any container.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 2 usage, 3 invalid config, 4 zig missing or failed,
5 shim or input file rejected, 6 file not readable or writable, 1 a bug.

Examples:
  hostshim generate                     build the built-in Toolbx example into out/
  hostshim generate -n toolbox -t /usr/libexec/toolbox/toolbox -o toolbox-shim
  hostshim inspect /usr/bin/toolbox
  hostshim plan --root / -- --version  what the shim would exec if / were the host`,
    )

  configOptions(
    program
      .command('generate')
      .description('render, compile, verify and write shims; prints arch, bytes and sha256 of each')
      .option('-o, --output <file>', 'the shim file (one architecture)')
      .option('--out-dir <dir>', 'directory for NAME-ARCH files (default: out)')
      .option('--json', 'print a JSON summary')
      .option('-q, --quiet', 'print nothing on success'),
  )
    .addHelpText('after', '\nWith no config and no --name/--target, builds examples/toolbox/hostshim.json.')
    .action(async (_opts, cmd: Command) => {
      const opts = cmd.opts<{ json?: boolean; quiet?: boolean }>()
      const config = loadConfig(givenFlags(cmd), io.cwd)
      outputPaths(config, io.cwd)
      const zig = await loadZig(io.env)
      const results = await generate(config, {
        zig,
        cacheDir: defaultCacheDir(io.env),
        cwd: io.cwd,
        onCompile: (arch) => {
          if (io.isTTY && !opts.quiet && !opts.json) io.stderr(`hostshim: compiling the ${arch.name} shim with zig (the first build for a target takes ~15 s)...\n`)
        },
      })
      if (opts.json) io.stdout(json(results))
      else if (!opts.quiet) for (const r of results) io.stdout(`${r.arch} ${r.bytes} ${r.sha256} ${r.path}\n`)
    })

  configOptions(
    program
      .command('render')
      .description('print (or write) the generated C source')
      .option('-o, --output <file>', 'write the C source here instead of stdout (one architecture)'),
  ).action(async (_opts, cmd: Command) => {
    const flags = givenFlags(cmd)
    const output = flags.output
    delete flags.output
    const config = loadConfig(flags, io.cwd)
    const sources = renderAll(config)
    if (output !== undefined) {
      if (sources.size > 1) throw new UsageError('--output names one file; render one architecture at a time')
      const path = resolve(io.cwd, output)
      try {
        await writeAtomic(path, [...sources.values()][0] as string, 0o644)
      } catch (error) {
        throw new IoError(`cannot write ${q(path)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
      }
      return
    }
    for (const source of sources.values()) io.stdout(source)
  })

  program
    .command('inspect')
    .description('show what an ELF file needs: loader, libraries, GLIBC versions; for a shim, its target')
    .argument('<file>', 'an ELF file')
    .option('--json', 'print JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const path = resolve(io.cwd, file)
      let bytes: Buffer
      try {
        bytes = readFileSync(path)
      } catch (error) {
        throw new IoError(`cannot read ${q(path)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
      }
      const report = inspectFile(bytes, path)
      io.stdout(opts.json ? json(report) : formatInspect(report))
    })

  configOptions(
    program
      .command('plan')
      .description('print, as JSON, what the shim would exec if DIR were the host root')
      .requiredOption('-r, --root <dir>', 'a host tree (for example / or a debootstrapped directory)')
      .addOption(new Option('--mode <mode>', 'container: DIR seen at the host root; host: DIR is /').choices(['container', 'host']).default('container'))
      .argument('[args...]', 'arguments the shim is called with (after --)')
      .option('--arg0 <arg>', 'the shim\'s own argv[0] (default: the config\'s name)'),
  ).action((args: string[], _opts, cmd: Command) => {
    const opts = cmd.opts<{ root: string; mode: 'container' | 'host'; arg0?: string }>()
    const flags = givenFlags(cmd)
    delete (flags as Record<string, unknown>).root
    delete (flags as Record<string, unknown>).mode
    const config = loadConfig(flags, io.cwd)
    const plan = planForRoot(config, resolve(io.cwd, opts.root), opts.mode, [opts.arg0 ?? config.name, ...args])
    io.stdout(json(plan))
  })

  return program
}

/** Run the CLI; returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const program = buildProgram(io)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return EXIT_CODES.ok
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end here too, with code 0.
      return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage
    }
    if (error instanceof HostshimError) {
      io.stderr(`hostshim: ${error.message}\n`)
      return error.exitCode
    }
    const e = error as Error
    io.stderr(`hostshim: internal error (a bug, please report it): ${e?.stack ?? String(error)}\n`)
    return EXIT_CODES.internal
  }
}
