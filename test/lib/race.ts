// race: a static program (the host's cc) that changes a host tree while a
// shim runs, at each of its system calls in turn, deterministically: it
// traces the shim (ptrace) and, when the shim enters its Nth system call,
// renames a prepared file over a path the shim checks or uses. Then N + 1,
// with the tree put back first, until a run ends before its Nth call.
//
//   race ORIG NEW PATH MAX -- COMMAND [ARG...]
//
// Before each run PATH is made ORIG again (a hard link of it renamed over
// PATH: a link's own inode, never its target); at the Nth system call entry
// after COMMAND's exec, NEW (a hard link of it) is renamed over PATH. The
// trace ends at the second exec (the shim's execve) or at exit; N runs up to
// MAX. One line per run on stdout:
//
//   N exit S|signal S HEX
//
// HEX: what the run wrote on stdout and stderr (one file), hex-encoded.
// The last line is "done N" with the number of system calls of a run that
// nothing disturbed.

import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CC } from './container.js'

export const RACE_C = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *orig, *new_, *path;
static char tmp[4096];

static void put(const char *from)
{
	unlink(tmp);
	if (link(from, tmp) < 0 || rename(tmp, path) < 0) {
		perror(from);
		exit(3);
	}
}

/* One run, swapping at system call n (0: never); returns how many calls it made. */
static long run(char **cmd, long n)
{
	int status, out, execs = 0, entering = 1;
	long calls = 0;
	pid_t pid;
	char buf[4096];
	ssize_t got;

	put(orig);
	out = open("/tmp/race.out", O_RDWR | O_CREAT | O_TRUNC, 0600);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(out, 1);
		dup2(out, 2);
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		execv(cmd[0], cmd);
		_exit(99);
	}
	waitpid(pid, &status, 0);
	ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
	ptrace(PTRACE_SYSCALL, pid, 0, 0);
	for (;;) {
		int sig = 0;

		if (waitpid(pid, &status, 0) < 0)
			exit(4);
		if (WIFEXITED(status) || WIFSIGNALED(status))
			break;
		if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
			if (++execs == 2) {
				/* The shim's own execve: what runs now is not the shim. */
				ptrace(PTRACE_DETACH, pid, 0, 0);
				waitpid(pid, &status, 0);
				break;
			}
		} else if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
			if (entering && execs == 1 && ++calls == n)
				put(new_);
			entering = !entering;
		} else {
			sig = WSTOPSIG(status);
		}
		ptrace(PTRACE_SYSCALL, pid, 0, sig);
	}
	printf("%ld %s %d ", n, WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	lseek(out, 0, SEEK_SET);
	while ((got = read(out, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < got; i++)
			printf("%02x", (unsigned char)buf[i]);
	printf("\\n");
	close(out);
	return calls;
}

int main(int argc, char **argv)
{
	long n, total, max;

	if (argc < 7 || strcmp(argv[5], "--")) {
		fputs("usage: race ORIG NEW PATH MAX -- COMMAND [ARG...]\\n", stderr);
		return 2;
	}
	orig = argv[1];
	new_ = argv[2];
	path = argv[3];
	max = atol(argv[4]);
	snprintf(tmp, sizeof(tmp), "%s.race", path);
	total = run(argv + 6, 0);
	for (n = 1; n <= total && n <= max; n++)
		run(argv + 6, n);
	put(orig);
	printf("done %ld\\n", total);
	return 0;
}
`

/** Build race (static, the host's cc) into `dir`; returns its path. */
export async function buildRace(dir: string): Promise<string> {
  const source = join(dir, 'race.c')
  const binary = join(dir, 'race')
  await writeFile(source, RACE_C)
  const r = spawnSync(CC, ['-static', '-O1', '-Wall', '-Werror', '-o', binary, source], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`cc failed to build race: ${r.stderr}`)
  return binary
}

export interface RaceRun {
  /** the system call the swap came at */
  readonly at: number
  readonly ending: { exit: number } | { signal: number }
  readonly output: Buffer
}

/** race's report: each run, and the number of system calls of an undisturbed one. */
export function parseRace(stdout: Buffer): { runs: RaceRun[]; calls: number } {
  const runs: RaceRun[] = []
  let calls = -1
  for (const line of stdout.toString('latin1').split('\n').filter(Boolean)) {
    const done = /^done (\d+)$/.exec(line)
    if (done) {
      calls = Number(done[1])
      continue
    }
    const m = /^(\d+) (exit|signal) (\d+) ([0-9a-f]*)$/.exec(line)
    if (!m) throw new Error(`not a race line: ${JSON.stringify(line)}`)
    const value = Number(m[3])
    runs.push({ at: Number(m[1]), ending: m[2] === 'exit' ? { exit: value } : { signal: value }, output: Buffer.from(m[4] as string, 'hex') })
  }
  if (calls < 0) throw new Error(`race did not finish: ${JSON.stringify(stdout.toString('latin1').slice(-500))}`)
  return { runs, calls }
}
