// Snapshots of directory trees, to say "nothing changed" exactly: every path
// with its type, permissions, owner and content hash (or link text).

import { createHash } from 'node:crypto'
import { lstat, readFile, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'

export interface Entry {
  readonly path: string
  readonly kind: 'file' | 'dir' | 'symlink' | 'other'
  /** permission bits with set-user-ID, set-group-ID and sticky, octal */
  readonly mode: string
  readonly uid: number
  readonly gid: number
  /** sha256 of a file, the text of a link */
  readonly content?: string
  /** with { identity: true }, for files: inode and mtime, so a rewrite with equal bytes shows too */
  readonly ino?: number
  readonly mtimeMs?: number
}

export async function snapshot(root: string, options: { identity?: boolean } = {}): Promise<Entry[]> {
  const out: Entry[] = []
  async function walk(rel: string): Promise<void> {
    const full = join(root, rel)
    const st = await lstat(full)
    const kind = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'
    const entry: Entry = {
      path: rel || '.',
      kind,
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      uid: st.uid,
      gid: st.gid,
      ...(kind === 'file' ? { content: createHash('sha256').update(await readFile(full)).digest('hex') } : {}),
      ...(kind === 'symlink' ? { content: await readlink(full) } : {}),
      ...(options.identity && kind === 'file' ? { ino: st.ino, mtimeMs: st.mtimeMs } : {}),
    }
    out.push(entry)
    if (kind === 'dir') for (const name of (await readdir(full)).sort()) await walk(rel ? join(rel, name) : name)
  }
  await walk('')
  return out
}
