// Podman with everything private: storage, run-time state, temp files and
// network config in a directory of the test's own, and every podman command
// in its own private mount namespace (unshare --propagation private).
//
// In that namespace `/` is made rshared (a peer group of the namespace's own,
// so `-v /:/run/host:rslave` works on a machine whose `/` is private) and
// tmpfs hide /run, /var/lib and /var/tmp: podman 4.3 writes a blob-info cache
// to /var/lib/containers/cache whatever --root says, runc keeps state in
// /run/runc, netavark in /run/containers, and image copies go through
// /var/tmp. None of that reaches the machine.

import { join } from 'node:path'
import { run, type RunResult } from './sys.js'

/** This machine's flags (issue #3): no systemd, no network, small limits. */
export const RUN_FLAGS = [
  '--network', 'none',
  '--ulimit', 'nofile=1024:1024',
  '--ulimit', 'nproc=1000:1000',
  '--pull', 'never',
] as const

const PRIVATE_NAMESPACE = [
  'mount -n --make-rshared /',
  'mount -n -t tmpfs -o mode=0755 hostshim-e2e /run',
  'mount -n -t tmpfs -o mode=0755 hostshim-e2e /var/lib',
  'mount -n -t tmpfs -o mode=1777 hostshim-e2e /var/tmp',
  'exec "$@"',
].join(' && ')

export class Podman {
  constructor(readonly dir: string) {}

  get globalFlags(): string[] {
    return [
      '--root', join(this.dir, 'storage'),
      '--runroot', join(this.dir, 'run'),
      '--tmpdir', join(this.dir, 'libpod-tmp'),
      '--network-config-dir', join(this.dir, 'networks'),
      '--volumepath', join(this.dir, 'volumes'),
      '--events-backend', 'none',
      '--storage-driver', 'vfs',
      '--cgroup-manager', 'cgroupfs',
      '--runtime', 'runc',
      '--log-level', 'error',
    ]
  }

  /** `podman GLOBAL-FLAGS args...` in a private mount namespace. */
  run(args: readonly string[], timeoutMs = 10 * 60_000): Promise<RunResult> {
    return run(
      'unshare',
      ['--mount', '--propagation', 'private', '--fork', 'sh', '-c', PRIVATE_NAMESPACE, 'sh', 'podman', ...this.globalFlags, ...args],
      { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C' }, timeoutMs },
    )
  }
}
