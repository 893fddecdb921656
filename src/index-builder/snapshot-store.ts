import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { IndexOptionError } from './errors/index-option-error';
import { SnapshotCorruptError } from './errors/snapshot-corrupt-error';
import { MAPPING_FILE, type NamespaceFiles } from './namespaced-index';
import { type CompiledIndexSettings, compileIndexSettings, integerIn } from './settings';
import { compareStreamIds } from './upsert-stream';

/**
 * `manifest.json` of a snapshot folder. Written last, inside the temporary folder, before the atomic
 * rename: a folder named `snapshot-<version>` without a valid manifest was not made by us.
 */
interface SnapshotManifest {
  format: 1;
  /** Monotonic within a snapshot directory: one more than the highest version present when written. */
  version: number;
  created_at: string;
  /** Vectors in the index (all namespaces). */
  count: number;
  settings: CompiledIndexSettings;
  /** Last index-log stream id applied to this index; replay starts after it. `0-0` = nothing applied. */
  log_position: string;
  namespaces: NamespaceFiles;
  /** Every data file of the folder (index files, vector files and `mapping.json`) with its size and sha256 (hex). */
  files: Record<string, { bytes: number; sha256: string }>;
}

/** A verified snapshot. */
export interface SnapshotRef {
  version: number;
  /** Absolute path of the snapshot folder. */
  dir: string;
  manifest: SnapshotManifest;
}

export interface LatestSnapshot {
  /** The newest snapshot that verified, or null. */
  snapshot: SnapshotRef | null;
  /** Newer snapshots refused on the way, newest first. */
  skipped: SnapshotCorruptError[];
}

/** A snapshot being written: the worker saves index files into `tmpDir`, then `commit` makes it durable. */
export interface PendingSnapshot {
  version: number;
  tmpDir: string;
}

export interface SnapshotStoreOptions {
  /** Folder holding `snapshot-<12-digit version>/` folders. Created if missing. Required. */
  dir: string;
  /** Snapshots kept after each commit (the newest N). Default 3; at least 1. */
  keep?: number;
}

export const MANIFEST_FILE = 'manifest.json';
const SNAPSHOT_RE = /^snapshot-(\d{12})$/;
const TMP_PREFIX = '.tmp-snapshot-';
const STREAM_ID_RE = /^\d+-\d+$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

const manifestSchema = z.object({
  format: z.literal(1),
  version: z.number().int().positive(),
  created_at: z.string().min(1),
  count: z.number().int().nonnegative(),
  settings: z.record(z.string(), z.unknown()),
  log_position: z.string().regex(STREAM_ID_RE),
  namespaces: z.record(z.string(), z.object({ file: z.string().min(1), count: z.number().int().nonnegative(), vectors: z.string().min(1).optional() })),
  files: z.record(z.string(), z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(SHA256_RE) })),
});

/** `snapshot-000000000042` for version 42. */
export function snapshotName(version: number): string {
  return `snapshot-${String(version).padStart(12, '0')}`;
}

/**
 * Durable, verifiable snapshots of the index on local disk.
 *
 * Layout: `<dir>/snapshot-000000000042/{manifest.json, mapping.json, ns-<namespace>.usearch...}`.
 * A snapshot is written into `<dir>/.tmp-snapshot-<version>-<random>/`, every file fsynced, the
 * manifest (with sha256 of every file) written and fsynced, the folder fsynced, renamed into place,
 * and the parent folder fsynced — so after a crash a snapshot is either complete or absent.
 * `loadLatest()` re-checks manifest, sizes and checksums and falls back to the previous good snapshot.
 */
export class SnapshotStore {
  readonly dir: string;
  readonly keep: number;
  private lastVersion = 0;

  constructor(opts: SnapshotStoreOptions) {
    if (typeof opts?.dir !== 'string' || opts.dir.length === 0) throw new IndexOptionError('snapshotDir', opts?.dir, 'a folder path');
    this.dir = opts.dir;
    this.keep = integerIn('keepSnapshots', opts.keep ?? 3, 1, 1000);
  }

  /** Creates the folder and removes temporary folders left by a crashed writer. Call once, as the only writer. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (name.startsWith(TMP_PREFIX)) await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  /** Snapshot folders present (complete or not), newest first. */
  async list(): Promise<{ version: number; dir: string }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .map((name) => SNAPSHOT_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ version: Number(m[1]), dir: join(this.dir, m[0]) }))
      .sort((a, b) => b.version - a.version);
  }

  /** Highest version present on disk (valid or not), 0 when none. Cheap: no checksums. */
  async latestVersion(): Promise<number> {
    return (await this.list())[0]?.version ?? 0;
  }

  /** Starts a snapshot: reserves the next version and creates its temporary folder. */
  async begin(): Promise<PendingSnapshot> {
    await mkdir(this.dir, { recursive: true });
    const version = Math.max(this.lastVersion, await this.latestVersion()) + 1;
    this.lastVersion = version;
    const tmpDir = join(this.dir, `${TMP_PREFIX}${version}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmpDir);
    return { version, tmpDir };
  }

  /** Throws away a snapshot that could not be written. */
  async abort(pending: PendingSnapshot): Promise<void> {
    await rm(pending.tmpDir, { recursive: true, force: true });
  }

  /**
   * Makes the files in `pending.tmpDir` a durable snapshot: fsync + sha256 of every file, manifest,
   * fsync of the folder, atomic rename, fsync of the parent. Then keeps only the newest `keep`.
   */
  async commit(
    pending: PendingSnapshot,
    meta: { count: number; settings: CompiledIndexSettings; logPosition: string; namespaces: NamespaceFiles },
  ): Promise<SnapshotRef> {
    const expected = new Set([MAPPING_FILE, ...Object.values(meta.namespaces).flatMap((n) => (n.vectors !== undefined ? [n.file, n.vectors] : [n.file]))]);
    const present = new Set(await readdir(pending.tmpDir));
    for (const f of expected) if (!present.has(f)) throw new Error(`snapshot ${pending.version}: ${f} was not written`);

    const files: SnapshotManifest['files'] = {};
    for (const name of [...expected].sort()) {
      const path = join(pending.tmpDir, name);
      await fsyncPath(path, 'r+');
      files[name] = { bytes: (await stat(path)).size, sha256: await sha256File(path) };
    }
    const manifest: SnapshotManifest = {
      format: 1,
      version: pending.version,
      created_at: new Date().toISOString(),
      count: meta.count,
      settings: meta.settings,
      log_position: meta.logPosition,
      namespaces: meta.namespaces,
      files,
    };
    const fh = await open(join(pending.tmpDir, MANIFEST_FILE), 'wx');
    try {
      await fh.writeFile(JSON.stringify(manifest, null, 2));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncPath(pending.tmpDir, 'r');
    const dir = join(this.dir, snapshotName(pending.version));
    await rename(pending.tmpDir, dir);
    await fsyncPath(this.dir, 'r');
    await this.prune();
    return { version: pending.version, dir, manifest };
  }

  /**
   * Checks one snapshot folder: manifest present and well-formed, version matching the folder name,
   * every listed file present with the recorded size and sha256. Throws `SnapshotCorruptError`.
   */
  async verify(dir: string): Promise<SnapshotRef> {
    const name = dir.split(/[\\/]/).pop() ?? dir;
    const m = SNAPSHOT_RE.exec(name);
    if (!m) throw new SnapshotCorruptError(name, 'folder name is not snapshot-<12 digits>');
    const version = Number(m[1]);
    const refuse = (reason: string) => new SnapshotCorruptError(name, reason, version);
    let raw: string;
    try {
      raw = await readFile(join(dir, MANIFEST_FILE), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw refuse(code === 'ENOENT' ? `${MANIFEST_FILE} is missing (partial snapshot)` : `${MANIFEST_FILE} unreadable: ${code}`);
    }
    let parsed: z.infer<typeof manifestSchema>;
    try {
      parsed = manifestSchema.parse(JSON.parse(raw));
    } catch (err) {
      throw refuse(`${MANIFEST_FILE} is malformed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
    if (parsed.version !== version) throw refuse(`manifest says version ${parsed.version}`);
    let settings: CompiledIndexSettings;
    try {
      settings = compileIndexSettings(parsed.settings, 'manifest.settings');
    } catch (err) {
      throw refuse((err as Error).message);
    }
    if (!parsed.files[MAPPING_FILE]) throw refuse(`manifest lists no ${MAPPING_FILE}`);
    let count = 0;
    for (const [ns, n] of Object.entries(parsed.namespaces)) {
      if (!parsed.files[n.file]) throw refuse(`namespace ${ns}: ${n.file} has no checksum in the manifest`);
      if (n.vectors !== undefined && !parsed.files[n.vectors]) throw refuse(`namespace ${ns}: ${n.vectors} has no checksum in the manifest`);
      count += n.count;
    }
    if (count !== parsed.count) throw refuse(`namespace counts add up to ${count}, manifest count is ${parsed.count}`);
    for (const [file, want] of Object.entries(parsed.files)) {
      if (file.includes('/') || file.includes('\\') || file === '..') throw refuse(`file name ${JSON.stringify(file)} is not a plain name`);
      const path = join(dir, file);
      let bytes: number;
      try {
        bytes = (await stat(path)).size;
      } catch {
        throw refuse(`${file} is missing (partial snapshot)`);
      }
      if (bytes !== want.bytes) throw refuse(`${file} has ${bytes} bytes, manifest says ${want.bytes} (truncated or partial)`);
      const sum = await sha256File(path);
      if (sum !== want.sha256) throw refuse(`${file} sha256 ${sum.slice(0, 12)}… does not match manifest ${want.sha256.slice(0, 12)}… (corrupt)`);
    }
    const manifest = { ...parsed, settings } as SnapshotManifest;
    return { version: parsed.version, dir, manifest };
  }

  /**
   * The newest snapshot that verifies (newer than `newerThan`, default 0; versions in `exclude` —
   * already refused — are passed over without re-reading them). Refused ones, newest
   * first, are in `skipped`, each a `SnapshotCorruptError` saying why. `snapshot` is null when none
   * verifies; a caller that finds `skipped` non-empty then must not start empty (data would be lost).
   */
  async loadLatest(opts: { newerThan?: number; exclude?: ReadonlySet<number> } = {}): Promise<LatestSnapshot> {
    const newerThan = opts.newerThan ?? 0;
    const skipped: SnapshotCorruptError[] = [];
    for (const c of await this.list()) {
      if (c.version <= newerThan) break;
      if (opts.exclude?.has(c.version)) continue;
      try {
        return { snapshot: await this.verify(c.dir), skipped };
      } catch (err) {
        if (!(err instanceof SnapshotCorruptError)) throw err;
        skipped.push(err);
      }
    }
    return { snapshot: null, skipped };
  }

  /** Removes all but the newest `keep` snapshot folders. Returns the removed folders. */
  async prune(): Promise<string[]> {
    const old = (await this.list()).slice(this.keep);
    for (const s of old) await rm(s.dir, { recursive: true, force: true });
    return old.map((s) => s.dir);
  }

  /**
   * The lowest log position among the kept snapshots whose manifest reads: the index log may be
   * trimmed up to it. Trimming only to the newest snapshot would lose the updates needed to recover
   * from an older one when the newest is later found corrupt. `null` when no manifest reads.
   */
  async retainedLogPosition(): Promise<string | null> {
    let min: string | null = null;
    for (const s of await this.list()) {
      try {
        const m = JSON.parse(await readFile(join(s.dir, MANIFEST_FILE), 'utf8')) as { log_position?: unknown };
        if (typeof m.log_position !== 'string' || !STREAM_ID_RE.test(m.log_position)) return null;
        if (min === null || compareStreamIds(m.log_position, min) < 0) min = m.log_position;
      } catch {
        return null; // an unreadable manifest: do not trim on guesses
      }
    }
    return min;
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function fsyncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
