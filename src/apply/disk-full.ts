// A write that failed because the filesystem was full (ENOSPC) gets a message that names the
// host and the directory, and says how to fix it; the shell only says "No space left on device".
import { dirname } from "node:path";

/** The message for writing `path` on `host` when `detail` (the remote error) is ENOSPC, else undefined. */
export function diskFullMessage(host: string, path: string, detail: string): string | undefined {
  if (!/no space left on device|ENOSPC/i.test(detail)) return undefined;
  const dir = dirname(path);
  return (
    `no space left on device on ${host}:${dir} while writing ${path}: free space on the filesystem that holds ${dir} ` +
    `(df -h ${dir} on ${host}); the live file is untouched`
  );
}
