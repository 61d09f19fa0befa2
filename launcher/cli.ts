// The command line: parse, call the core, print. No work happens here.

import { readFileSync, realpathSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { ARCH_NAMES, type Arch } from './arch.js'
import { clearCaches, formatCaches, listCaches } from './cache.js'
import { loadConfig, loadRawConfig, type ConfigFlags } from './config-file.js'
import { doctor, formatDoctor, type Tree } from './doctor.js'
import { EXIT_CODES, HostshimError, IoError, UsageError, ioError, q } from './errors.js'
import { generate, renderAll, outputPaths } from './generate.js'
import { nodeHostView } from './hostview.js'
import { inspectFile, formatInspect } from './inspect.js'
import { install, uninstall, type InstallRequest, type InstallResult } from './install.js'
import { planForRoot } from './plan-cli.js'
import { defaultCacheDir, loadToolchain, toolchainName, writeAtomic, type Toolchain } from './toolchain.js'
import { VERSION } from './version.js'

export interface Io {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly isTTY: boolean
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
}

/** The exit codes, for --help and the README (keep the two in step). */
export const EXIT_CODE_HELP = `Exit codes:
  0  success (doctor: every tree runs the program, directly or through the shim)
  1  a bug: an internal error, shown with its stack
  2  bad command line
  3  invalid config: the message names the field
  4  zig or the C compiler (--cc) missing or failed (its command and stderr
     are shown), or the compiler cannot link a static program
  5  a built shim failed verification, or a file is not a usable ELF program
  6  a file could not be read or written
  7  install/uninstall refused, nothing changed: set-user-ID/set-group-ID
     program, symbolic link, a different file at the libexec path, a shim
     for another target, not a hostshim shim; cache --clear refused a path
  8  doctor: some tree cannot run the program, even through the shim`

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

/** The options every command that builds a config accepts. */
function configOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'JSON config file (fields: name, target, hostRoot, libDirs, arch, argv0, debugEnv, env, mode, requireHostRoot, planCache, cc, output, outDir)')
    .option('-n, --name <name>', 'program name, used in messages and file names')
    .option('-t, --target <path>', 'absolute path of the real binary on the host (need not exist here), or $ORIGIN/REL: REL next to the shim')
    .option('--host-root <dir>', 'where containers see the host\'s root', '/run/host')
    .option('-L, --lib-dir <dir>', 'extra host library directory (repeatable)', collect)
    .option('-a, --arch <list>', `architectures: ${ARCH_NAMES.join(', ')}, a comma list, or all`)
    .option('--no-argv0', 'never pass --argv0 to the host loader')
    .option('--no-plan-cache', 'compute the plan on every launch instead of keeping it in $XDG_RUNTIME_DIR/hostshim')
    .option('--debug-env <name>', 'variable that turns on the shim\'s debug output', 'HOSTSHIM_DEBUG')
    .option('-e, --env <NAME=VALUE>', 'set a variable for the program (repeatable)', collect)
    .option('--require-host-root', 'for shims that live only in images: without the host root mounted, exit 127 naming it, never run the target as it is (host mode)')
    .option('--no-require-host-root', 'allow host mode even if the config requires the host root')
    .addOption(
      new Option('--mode <mode>', 'how the shim starts the host loader: chainload (the default: map it in-process, so /proc/self/exe stays the shim; exec where an architecture lacks it) or exec (execve it)').choices([
        'exec',
        'chainload',
      ]),
    )
}

/** --cc, for the commands that compile. */
function compilerOption(cmd: Command): Command {
  return cmd.option(
    '--cc <command>',
    'toolchain: zig (the default), a C compiler command (gcc, musl-gcc, "clang-14 -fuse-ld=lld"), or \'$CC\' for the compiler the CC variable names (CC is read only then)',
  )
}

/** commander fills defaults; only flags the user gave may override a config file. */
function givenFlags(cmd: Command, own: readonly string[] = []): ConfigFlags {
  const opts = cmd.opts<ConfigFlags>()
  const flags: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(opts)) {
    if (cmd.getOptionValueSource(key) === 'cli' && !own.includes(key)) flags[key] = value
  }
  return flags as ConfigFlags
}

/**
 * The version of every JSON output's shape (--json, `plan`, and errors under
 * --json): a top-level "schemaVersion". Raised when a field changes meaning
 * or goes away; new fields do not raise it.
 */
export const JSON_SCHEMA_VERSION = 1

function json(value: object): string {
  return `${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, ...value }, null, 2)}\n`
}

function examples(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`
}

/**
 * Each compile that misses the cache says so on stderr, with the
 * architecture: zig's first build for a target also builds its compiler
 * runtime (compiler-rt, ~10 s). On a terminal the seconds count and the line ends with
 * "done"; to pipes and logs, one line per compile. Never on stdout; nothing
 * with --quiet or --json.
 */
function compileProgress(io: Io, quiet: boolean, toolchain: () => Toolchain | undefined) {
  let timer: NodeJS.Timeout | undefined
  let line = ''
  return {
    onCompile: (arch: Arch) => {
      if (quiet) return
      stop()
      const used = toolchain()
      line =
        used?.kind === 'cc'
          ? `hostshim: compiling the ${arch.name} shim with ${toolchainName(used)} (not cached)...`
          : `hostshim: compiling the ${arch.name} shim with zig (not cached; the first build for a target also builds compiler-rt, ~10 s)...`
      if (!io.isTTY) {
        io.stderr(`${line}\n`)
        return
      }
      const started = Date.now()
      io.stderr(line)
      timer = setInterval(() => io.stderr(`\r${line} ${Math.round((Date.now() - started) / 1000)} s`), 1000)
      timer.unref()
    },
    stop,
  }
  function stop(): void {
    if (timer === undefined) return
    clearInterval(timer)
    timer = undefined
    io.stderr(`\r${line} done\n`)
  }
}

interface State {
  exitCode: number
}

export function buildProgram(io: Io, state: State = { exitCode: EXIT_CODES.ok }): Command {
  const program = new Command('hostshim')
    .description('Generate tiny static launchers that run a host binary through the host\'s own dynamic loader inside any container.')
    .version(VERSION, '-V, --version')
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // commander's "error: ..." in hostshim's one-line form; main() makes it exit 2.
      outputError: (text, write) => write(`hostshim: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see --help)\n`),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
${EXIT_CODE_HELP}
${examples([
  'hostshim generate                     build the built-in Toolbx example into out/',
  'hostshim generate -n toolbox -t /usr/libexec/toolbox/toolbox -o toolbox-shim',
  'hostshim install --name toolbox --binary /usr/bin/toolbox --destdir "$DESTDIR"',
  'hostshim doctor /usr/bin/toolbox --rootfs /srv/debian-11',
  'hostshim inspect /usr/bin/toolbox',
  'hostshim plan --root / -- --version   what the shim would exec if / were the host',
  'hostshim cache                        paths and sizes of the caches (--clear removes them)',
  'hostshim COMMAND --help               options and examples of one command',
])}`,
    )

  configOptions(
    compilerOption(program
      .command('generate')
      .description('render, compile, verify and write shims; prints arch, bytes and sha256 of each'))
      .option('-o, --output <file>', 'the shim file (one architecture)')
      .option('--out-dir <dir>', 'directory for NAME-ARCH files (default: out)')
      .option('--json', 'print a JSON summary')
      .option('-q, --quiet', 'print nothing on success'),
  )
    .addHelpText(
      'after',
      `\nWith no config and no --name/--target, builds examples/toolbox/hostshim.json (built in).\n${examples([
        'hostshim generate',
        'hostshim generate -c examples/entrypoint/hostshim.json -o rootfs/entrypoint',
        'hostshim generate -n toolbox -t /usr/libexec/toolbox/toolbox --arch all --out-dir shims',
        'hostshim generate --cc musl-gcc --mode exec -o toolbox      no zig: the distribution\'s own compiler',
      ])}`,
    )
    .action(async (_opts, cmd: Command) => {
      const opts = cmd.opts<{ json?: boolean; quiet?: boolean }>()
      const config = loadConfig(givenFlags(cmd), io.cwd)
      outputPaths(config, io.cwd)
      const toolchain = await loadToolchain(config.cc, io.env, io.cwd)
      const progress = compileProgress(io, Boolean(opts.quiet || opts.json), () => toolchain)
      let results
      try {
        results = await generate(config, { toolchain, cacheDir: defaultCacheDir(io.env), cwd: io.cwd, onCompile: progress.onCompile })
      } finally {
        progress.stop()
      }
      if (opts.json) io.stdout(json({ shims: results }))
      else if (!opts.quiet) {
        for (const r of results) io.stdout(`${r.arch} ${r.bytes} ${r.sha256} ${r.path}\n`)
        for (const r of results) if (r.note) io.stderr(`hostshim: note: ${r.note}\n`)
      }
    })

  configOptions(
    program
      .command('render')
      .description('print (or write) the generated C source')
      .option('-o, --output <file>', 'write the C source here instead of stdout (one architecture)'),
  )
    .addHelpText('after', examples(['hostshim render -n toolbox -t /usr/libexec/toolbox/toolbox | less', 'hostshim render -c hostshim.json -a aarch64 -o shim.c']))
    .action(async (_opts, cmd: Command) => {
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
          throw ioError(`cannot write ${q(path)}`, error)
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
    .addHelpText('after', examples(['hostshim inspect /usr/bin/toolbox          an installed shim: its target and config hash', 'hostshim inspect --json /usr/libexec/toolbox/toolbox']))
    .action((file: string, opts: { json?: boolean }) => {
      const path = resolve(io.cwd, file)
      const report = inspectFile(readInput(path), path, realPathOf(path))
      io.stdout(opts.json ? json(report) : formatInspect(report))
    })

  configOptions(
    program
      .command('plan')
      .description('print, as JSON, what the shim would exec if DIR were the host root')
      .requiredOption('-r, --root <dir>', 'a host tree (for example / or a debootstrapped directory)')
      .option('--host-mode', 'plan for the host itself (DIR is /, no host root mounted) instead of a container')
      .argument('[args...]', 'arguments the shim is called with (after --)')
      .option('--arg0 <arg>', 'the shim\'s own argv[0] (default: the config\'s name)')
      .option('--runtime-dir <dir>', 'the caller\'s XDG_RUNTIME_DIR: use a plan the shim kept there, as the shim would')
      .option('--origin <dir>', 'for a $ORIGIN/... target: the directory the shim is in (its resolved location); the target is found there, in this machine\'s view'),
  )
    .addHelpText(
      'after',
      examples([
        'hostshim plan --root / -- --version',
        'hostshim plan -c hostshim.json --root /srv/fedora-40 --arg0 toolbox -- list',
        "hostshim plan -n prog -t '$ORIGIN/prog-real' --origin ./builddir --root / -- --help",
      ]),
    )
    .action((args: string[], _opts, cmd: Command) => {
      const opts = cmd.opts<{ root: string; hostMode?: boolean; arg0?: string; runtimeDir?: string; origin?: string }>()
      const config = loadConfig(givenFlags(cmd, ['root', 'hostMode', 'arg0', 'runtimeDir', 'origin']), io.cwd)
      const runtimeDir = opts.runtimeDir === undefined ? undefined : resolve(io.cwd, opts.runtimeDir)
      const origin = opts.origin === undefined ? undefined : resolve(io.cwd, opts.origin)
      const plan = planForRoot(config, resolve(io.cwd, opts.root), opts.hostMode ? 'host' : 'container', [opts.arg0 ?? config.name, ...args], { runtimeDir, origin })
      io.stdout(json(plan))
    })

  const placeOptions = (cmd: Command) =>
    cmd
      .requiredOption('-b, --binary <path>', 'the program\'s path on the installed system, where the shim goes (e.g. /usr/bin/toolbox)')
      .option('--destdir <dir>', 'staging directory standing for / (packaging: $DESTDIR); paths are host paths below it')
      .option('--libexec <dir>', 'where the program moves: DIR/NAME (default: the config\'s target, else /usr/libexec/NAME)')
      .option('--json', 'print a JSON summary')
      .option('-q, --quiet', 'print nothing on success')
  const installOptions = (cmd: Command) => configOptions(placeOptions(cmd))
  // uninstall builds nothing: only what says where the program and its shim are.
  const uninstallOptions = (cmd: Command) =>
    placeOptions(
      cmd
        .option('-c, --config <file>', 'the JSON config install was given (its name and target)')
        .option('-n, --name <name>', 'program name')
        .option('-t, --target <path>', 'the program\'s libexec path, in full (as install was given it)'),
    )
  const installRequest = (cmd: Command): InstallRequest => {
    const opts = cmd.opts<{ binary: string; destdir?: string; libexec?: string }>()
    const flags = givenFlags(cmd, ['binary', 'destdir', 'libexec', 'json', 'quiet'])
    if (flags.config === undefined && flags.name === undefined) throw new UsageError(`${cmd.name()} needs --name NAME (or --config FILE with a name)`)
    if (flags.target !== undefined && opts.libexec !== undefined) throw new UsageError('give --libexec DIR (the program goes to DIR/NAME) or --target PATH, not both')
    const raw = loadRawConfig(flags, io.cwd)
    // A flag beats the config file: --libexec replaces the file's target.
    if (opts.libexec !== undefined) delete raw.target
    return {
      raw,
      binary: opts.binary,
      cwd: io.cwd,
      ...(opts.destdir === undefined ? {} : { destdir: opts.destdir }),
      ...(opts.libexec === undefined ? {} : { libexec: opts.libexec }),
    }
  }
  const report = (cmd: Command, result: InstallResult) => {
    const opts = cmd.opts<{ json?: boolean; quiet?: boolean }>()
    if (opts.json) io.stdout(json(result))
    else if (!opts.quiet) io.stdout(`${formatInstall(result)}\n`)
  }

  installOptions(
    compilerOption(program
      .command('install')
      .description('move the program at --binary to libexec and put a shim for it in its place (atomic, idempotent)')),
  )
    .addHelpText(
      'after',
      `
Builds and verifies the shim first, then moves the program (keeping its mode,
owner and times) and renames the shim into place; on any failure the tree is
left as it was. Run again: nothing changes (the shim's mark is checked); with
another config, only the shim is replaced. Refuses (exit 7) set-user-ID or
set-group-ID programs, symbolic links, and a different file at the libexec path.
${examples([
        'hostshim install --name toolbox --binary /usr/bin/toolbox',
        'hostshim install -c examples/toolbox/hostshim.json --binary /usr/bin/toolbox --destdir "$DESTDIR"',
        'hostshim install --name mytool --binary /usr/bin/mytool --libexec /usr/lib/mytool --json',
        'hostshim install --name toolbox --binary /usr/bin/toolbox --cc gcc --destdir "$DESTDIR"',
      ])}`,
    )
    .action(async (_opts, cmd: Command) => {
      const quiet = Boolean(cmd.opts().quiet || cmd.opts().json)
      let toolchain: Toolchain | undefined
      const progress = compileProgress(io, quiet, () => toolchain)
      const loadCompiler = async (cc: string | undefined) => (toolchain = await loadToolchain(cc, io.env, io.cwd))
      let result: InstallResult
      try {
        result = await install(installRequest(cmd), { loadToolchain: loadCompiler, cacheDir: defaultCacheDir(io.env), onCompile: progress.onCompile })
      } finally {
        progress.stop()
      }
      report(cmd, result)
    })

  uninstallOptions(
    program
      .command('uninstall')
      .description('put the program back from libexec over its shim (with the options install was given)'),
  )
    .addHelpText(
      'after',
      `
Only when --binary holds a hostshim shim whose target is the libexec path;
the libexec directory is removed too when it is empty and named after the
program. Nothing installed: nothing to do (exit 0).
${examples([
        'hostshim uninstall --name toolbox --binary /usr/bin/toolbox',
        'hostshim uninstall -c examples/toolbox/hostshim.json --binary /usr/bin/toolbox --destdir "$DESTDIR"',
      ])}`,
    )
    .action(async (_opts, cmd: Command) => {
      report(cmd, await uninstall(installRequest(cmd)))
    })

  program
    .command('doctor')
    .description('for each tree: does the program run there directly, only through the shim, or not at all?')
    .argument('<binary>', 'the program (an ELF file here)')
    .requiredOption('--rootfs <dir>', 'a container\'s tree (repeatable)', collect)
    .option('--host <dir>', 'the host tree the shim would use', '/')
    .option('--json', 'print JSON')
    .option('-q, --quiet', 'print nothing; the exit code says it')
    .addHelpText(
      'after',
      `
Compares the versions the program and its libraries need (.gnu.version_r)
with what each tree's libraries define (.gnu.version_d), and checks that the
loader and every DT_NEEDED library exist there. Through the shim the program
uses the host's loader and libraries, so "needs the shim" is said only when
the host tree has them. Exit 8 when some tree cannot run it even so.
${examples([
        'hostshim doctor /usr/bin/toolbox --rootfs /srv/debian-11 --rootfs /srv/fedora-40',
        'hostshim doctor ./mytool --rootfs ./rootfs --host /srv/host-tree --json',
      ])}`,
    )
    .action((binary: string, opts: { rootfs: string[]; host: string; json?: boolean; quiet?: boolean }) => {
      const path = resolve(io.cwd, binary)
      const bytes = readInput(path)
      const tree = (dir: string, what: string): Tree => {
        const full = resolve(io.cwd, dir)
        let id: string
        try {
          const st = statSync(full, { bigint: true })
          if (!st.isDirectory()) throw new IoError(`${what} ${q(full)} is not a directory`)
          id = `${st.dev}:${st.ino}`
        } catch (error) {
          if (error instanceof IoError) throw error
          throw ioError(`cannot use ${what} ${q(full)}`, error)
        }
        return { name: full, view: nodeHostView(full), id }
      }
      // The program's own libraries ($ORIGIN in its RUNPATH) are where its file is, as every tree sees it.
      const place = { dir: dirname(realPathOf(path)), view: nodeHostView('/') }
      const result = doctor(bytes, path, opts.rootfs.map((dir) => tree(dir, '--rootfs')), tree(opts.host, '--host'), place)
      if (result.trees.some((t) => t.verdict === 'cannot-run')) state.exitCode = EXIT_CODES.cannotRun
      if (opts.json) io.stdout(json(result))
      else if (!opts.quiet) io.stdout(formatDoctor(result))
    })

  program
    .command('cache')
    .description('show the caches hostshim uses, with their paths and sizes; --clear removes them')
    .option('--clear', 'remove the three cache directories (only those)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
The caches: hostshim's compiled shims ($HOSTSHIM_CACHE, default
~/.cache/hostshim), zig's own ($ZIG_GLOBAL_CACHE_DIR, default ~/.cache/zig:
the compiler runtime of every target built, and zig's record of each compile), and
the shims' run-time plans ($XDG_RUNTIME_DIR/hostshim, when set). Cleared, the
next build of a target takes ~10 s again. --clear refuses (exit 7, nothing
removed) a path that is "/", relative, the home directory or above it, or
not a directory.
${examples(['hostshim cache', 'hostshim cache --clear', 'hostshim cache --json'])}`,
    )
    .action(async (opts: { clear?: boolean; json?: boolean }) => {
      const dirs = opts.clear ? await clearCaches(io.env) : await listCaches(io.env)
      if (opts.json) io.stdout(json({ cleared: Boolean(opts.clear), caches: dirs }))
      else io.stdout(formatCaches(dirs, Boolean(opts.clear)))
    })

  return program
}

/** The file's resolved path; the path itself when it cannot be resolved (readInput says why). */
function realPathOf(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

function readInput(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    throw ioError(`cannot read ${q(path)}`, error)
  }
}

export function formatInstall(r: InstallResult): string {
  const under = r.destdir === null ? '' : ` (under ${q(r.destdir)})`
  const shim = `shim (${r.arch}, ${r.bytes} bytes, mode ${r.mode})`
  switch (r.action) {
    case 'installed':
      return `installed: ${q(r.binary)} is now a ${shim}; the program moved to ${q(r.target)}${under}`
    case 'updated':
      return `updated: ${q(r.binary)} is a new ${shim} for ${q(r.target)}${under}`
    case 'unchanged':
      return `unchanged: ${q(r.binary)} is already the shim for ${q(r.target)}${under}`
    case 'uninstalled':
      return `uninstalled: ${q(r.target)} moved back to ${q(r.binary)}${under}`
    case 'absent':
      return `nothing to do: ${q(r.binary)} is not a hostshim shim and ${q(r.target)} does not exist${under}`
  }
}

/** Run the CLI; returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const state: State = { exitCode: EXIT_CODES.ok }
  const program = buildProgram(io, state)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return state.exitCode
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end here too, with code 0.
      return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage
    }
    if (error instanceof HostshimError) {
      io.stderr(`hostshim: ${error.message}\n`)
      // Under --json the error is JSON on stdout as well, with the system's code (ENOENT...) where there is one.
      const options = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv
      if (options.includes('--json')) {
        const errno = error instanceof IoError ? error.errno : undefined
        io.stdout(json({ error: { exitCode: error.exitCode, message: error.message, ...(errno === undefined ? {} : { errno }) } }))
      }
      return error.exitCode
    }
    const e = error as Error
    io.stderr(`hostshim: internal error (a bug, please report it): ${e?.stack ?? String(error)}\n`)
    return EXIT_CODES.internal
  }
}
