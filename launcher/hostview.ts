// The plan model's window on a real directory tree: launcher/plan.ts asks a
// HostView about host paths, and this one answers with node:fs calls on
// realRoot + path. The only file-system code of the plan model.

import * as fs from 'node:fs'
import { resolve } from 'node:path'
import { PLAN_FORMAT, isErrno, type HostErr, type HostFile, type HostStat, type HostView, type Mode, type RuntimeEntry } from './plan.js'

function failure(error: unknown): HostErr {
  const code = (error as NodeJS.ErrnoException).code
  return { errno: isErrno(code) ? code : 'EIO' }
}

function toStat(st: fs.BigIntStats): HostStat {
  const kind = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'
  return { kind, size: Number(st.size), dev: st.dev, ino: st.ino, mode: Number(st.mode), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }
}

/**
 * A HostView of the tree at realRoot: host path "/usr" is realRoot + "/usr".
 * realRoot "/" maps host paths to themselves (host mode on this machine).
 */
export function nodeHostView(realRoot: string): HostView {
  const top = resolve(realRoot)
  const prefix = top === '/' ? Buffer.alloc(0) : Buffer.from(top, 'utf8')
  const real = (path: string): Buffer => Buffer.concat([prefix, Buffer.from(path, 'latin1')])

  return {
    lstat(path) {
      try {
        return toStat(fs.lstatSync(real(path), { bigint: true }))
      } catch (error) {
        return failure(error)
      }
    },
    stat(path) {
      try {
        return toStat(fs.statSync(real(path), { bigint: true }))
      } catch (error) {
        return failure(error)
      }
    },
    readlink(path) {
      try {
        return fs.readlinkSync(real(path), { encoding: 'buffer' }).toString('latin1')
      } catch (error) {
        return failure(error)
      }
    },
    executable(path) {
      try {
        fs.accessSync(real(path), fs.constants.X_OK)
        return true
      } catch {
        return false
      }
    },
    open(path) {
      let fd: number
      try {
        fd = fs.openSync(real(path), fs.constants.O_RDONLY)
      } catch (error) {
        return failure(error)
      }
      const file: HostFile = {
        read(offset, length) {
          try {
            const buf = Buffer.alloc(length)
            const n = fs.readSync(fd, buf, 0, length, offset)
            return buf.subarray(0, n)
          } catch (error) {
            return failure(error)
          }
        },
        close() {
          fs.closeSync(fd)
        },
      }
      return file
    },
    readdir(path) {
      let dir: fs.Dir
      try {
        // opendir keeps the directory's own order, as getdents does; readdirSync sorts.
        // Typed as text only; with "buffer" the names come as bytes, which is what a host path is.
        dir = fs.opendirSync(real(path), { encoding: 'buffer' as BufferEncoding })
      } catch (error) {
        return failure(error)
      }
      const names: string[] = []
      try {
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
          names.push((entry.name as unknown as Buffer).toString('latin1'))
        }
      } catch (error) {
        return failure(error)
      } finally {
        dir.closeSync()
      }
      return names
    },
  }
}

/**
 * The shim's section 1 on this machine: container mode when hostRoot is a
 * directory other than "/" (device or inode differ); a Toolbx host's
 * /run/host -> ../ is "/" again, so host mode.
 */
export function detectMode(hostRoot: string): Mode {
  try {
    const here = fs.statSync(hostRoot, { bigint: true })
    const top = fs.statSync('/', { bigint: true })
    return here.isDirectory() && (here.dev !== top.dev || here.ino !== top.ino) ? 'container' : 'host'
  } catch {
    return 'host'
  }
}

/** The caller's own files, for the plan cache's directory and file (PlanCacheInput). */
export function nodeRuntimeFiles(): { lstat(path: string): RuntimeEntry | HostErr; read(path: string): Buffer | HostErr } {
  return {
    lstat(path) {
      try {
        const st = fs.lstatSync(path)
        const kind = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'
        return { kind, uid: st.uid, perm: st.mode & 0o7777 }
      } catch (error) {
        return failure(error)
      }
    },
    read(path) {
      try {
        const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
        try {
          const buf = Buffer.alloc(PLAN_FORMAT.maxBytes + 1)
          return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0))
        } finally {
          fs.closeSync(fd)
        }
      } catch (error) {
        return failure(error)
      }
    },
  }
}
