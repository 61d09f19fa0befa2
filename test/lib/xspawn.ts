// xspawn: a tiny static program (zig cc, musl) that starts another one the
// ways a shell cannot: with argv = { NULL }, with a signal mask or ignored
// signals, with arguments of exact sizes built in memory, and that reports
// how its child ended (exit N or signal N) without the 128 + N ambiguity.
//
//   xspawn [-w] [-0] [-b SIG]... [-i SIG]... [-A LEN]... [-P TOTAL] [-N COUNT] [-E COUNT:LEN] [-S BYTES] -- PATH [ARG...]
//
//   -w        fork, run PATH in the child, wait; print "exit N" or "signal N"
//             on stdout (core dumps off). Without -w: execve in place.
//   -0        execve with argv = { NULL } (argc 0); ARGs are ignored
//   -b SIG    block signal number SIG first
//   -i SIG    ignore signal number SIG first (SIG_IGN survives execve)
//   -A LEN    append an argument of LEN bytes ("a"...)
//   -P TOTAL  append arguments of at most 100000 bytes each, TOTAL bytes in all
//   -N COUNT  append COUNT one-byte arguments ("a")
//   -E COUNT:LEN  add COUNT environment variables "E<n>=aaa..." of LEN bytes each
//   -S BYTES  set the stack's soft rlimit to BYTES first (the hard one stays)
//
// When execve itself fails: "xspawn: execve: STRERROR" on stderr, exit 200.
// Runs in a busybox root: it needs no libc at run time.

import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadZig } from '../../launcher/toolchain.js'

export const XSPAWN_C = `#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *filled(size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		exit(201);
	memset(s, 'a', n);
	s[n] = 0;
	return s;
}

int main(int argc, char **argv)
{
	char **args, **env = environ;
	int wait_for = 0, no_argv = 0, i = 1, n = 0;
	unsigned long ones = 0, env_count = 0, env_len = 0;
	const char *path;
	sigset_t block;
	pid_t pid;

	sigemptyset(&block);
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-w"))
			wait_for = 1;
		else if (!strcmp(argv[i], "-0"))
			no_argv = 1;
		else if (!strcmp(argv[i], "-b") && i + 1 < argc)
			sigaddset(&block, atoi(argv[++i]));
		else if (!strcmp(argv[i], "-i") && i + 1 < argc)
			signal(atoi(argv[++i]), SIG_IGN);
		else if ((!strcmp(argv[i], "-A") || !strcmp(argv[i], "-P")) && i + 1 < argc)
			i++;
		else if (!strcmp(argv[i], "-N") && i + 1 < argc)
			ones = strtoul(argv[++i], 0, 10);
		else if (!strcmp(argv[i], "-E") && i + 1 < argc && strchr(argv[i + 1], ':')) {
			env_count = strtoul(argv[++i], 0, 10);
			env_len = strtoul(strchr(argv[i], ':') + 1, 0, 10);
		} else if (!strcmp(argv[i], "-S") && i + 1 < argc) {
			struct rlimit rl;

			getrlimit(RLIMIT_STACK, &rl);
			rl.rlim_cur = strtoul(argv[++i], 0, 10);
			if (setrlimit(RLIMIT_STACK, &rl) < 0) {
				perror("xspawn: setrlimit");
				return 2;
			}
		}
		else {
			fprintf(stderr, "xspawn: unknown option %s\\n", argv[i]);
			return 2;
		}
	}
	if (i + 1 >= argc) {
		fputs("usage: xspawn [-w] [-0] [-b SIG] [-i SIG] [-A LEN] [-P TOTAL] -- PATH [ARG...]\\n", stderr);
		return 2;
	}
	path = argv[i + 1];
	args = calloc((size_t)argc + 4096 + ones, sizeof(char *));
	if (!args)
		return 201;
	for (int k = i + 1; k < argc; k++)
		args[n++] = argv[k];
	for (int k = 1; k < i; k++) {
		if (!strcmp(argv[k], "-A"))
			args[n++] = filled(strtoul(argv[++k], 0, 10));
		else if (!strcmp(argv[k], "-P"))
			for (unsigned long left = strtoul(argv[++k], 0, 10); left > 0 && n < argc + 4000;) {
				unsigned long piece = left < 100000 ? left : 100000;

				args[n++] = filled(piece);
				left -= piece;
			}
		else if (!strcmp(argv[k], "-b") || !strcmp(argv[k], "-i") || !strcmp(argv[k], "-N") || !strcmp(argv[k], "-E") ||
			 !strcmp(argv[k], "-S"))
			k++;
	}
	for (unsigned long k = 0; k < ones; k++)
		args[n++] = "a";
	args[n] = 0;
	if (env_count) {
		size_t have = 0;

		while (environ[have])
			have++;
		env = calloc(have + env_count + 1, sizeof(char *));
		if (!env)
			return 201;
		memcpy(env, environ, have * sizeof(char *));
		for (unsigned long k = 0; k < env_count; k++) {
			char *v = filled(env_len + 24);

			snprintf(v, 24, "E%lu=", k);
			memmove(v + strlen(v), v + 24, env_len + 1);
			env[have + k] = v;
		}
	}
	sigprocmask(SIG_BLOCK, &block, 0);
	if (wait_for) {
		struct rlimit none = { 0, 0 };
		int status;

		setrlimit(RLIMIT_CORE, &none);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return 202;
		if (pid > 0) {
			if (waitpid(pid, &status, 0) < 0)
				return 203;
			if (WIFSIGNALED(status))
				printf("signal %d\\n", WTERMSIG(status));
			else
				printf("exit %d\\n", WEXITSTATUS(status));
			return 0;
		}
	}
	if (no_argv) {
		char *none[] = { 0 };

		execve(path, none, environ);
	} else {
		execve(path, args, env);
	}
	fprintf(stderr, "xspawn: execve: %s\\n", strerror(errno));
	return 200;
}
`

/** Build xspawn (static, x86_64 musl) into `dir`; returns its path. */
export async function buildXspawn(dir: string): Promise<string> {
  const zig = await loadZig()
  const source = join(dir, 'xspawn.c')
  const binary = join(dir, 'xspawn')
  await writeFile(source, XSPAWN_C)
  const r = spawnSync(zig.path, ['cc', '-target', 'x86_64-linux-musl', '-static', '-Os', '-Wall', '-Werror', '-o', binary, source], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`zig cc failed to build xspawn: ${r.stderr}`)
  return binary
}

/** How a child ended, from xspawn -w's last line. */
export function parseEnding(stdout: Buffer): { exit: number } | { signal: number } {
  const m = /(exit|signal) (\d+)\n$/.exec(stdout.toString('latin1'))
  if (!m) throw new Error(`no "exit N" or "signal N" at the end of ${JSON.stringify(stdout.toString('latin1').slice(-200))}`)
  return m[1] === 'exit' ? { exit: Number(m[2]) } : { signal: Number(m[2]) }
}
