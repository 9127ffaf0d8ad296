/**
 * What an environment holds, read from its tree: Python distributions
 * (`*.dist-info/METADATA`, Name and Version) and Node packages
 * (`node_modules/[@scope/]name/package.json`). The files were written by the
 * installer, untrusted code: each is read only if it is a regular file, up to
 * a byte bound, and parsed strictly; anything odd is skipped, never trusted.
 */
import { constants } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { EnvironmentPackage } from "../contract/environment.js";

const MAX_METADATA_BYTES = 64 * 1024;
const MAX_PACKAGE_JSON_BYTES = 256 * 1024;
/** Packages listed per language at most. */
export const MAX_PACKAGES = 5000;

const PY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$/;
const PY_VERSION = /^[A-Za-z0-9.+!_-]{1,64}$/;
const NPM_NAME = /^(?:@[a-z0-9~][a-z0-9._~-]{0,100}\/)?[a-z0-9~][a-z0-9._~-]{0,213}$/;
const NPM_VERSION = /^[0-9A-Za-z.+_-]{1,64}$/;

/** The first `max` bytes of a regular file (never following a link), or null. */
async function readBounded(path: string, max: number): Promise<string | null> {
  const st = await lstat(path).catch(() => null);
  if (!st?.isFile()) return null;
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buffer = Buffer.alloc(max);
    const { bytesRead } = await handle.read(buffer, 0, max, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** Name and Version from a METADATA header (RFC 822 style: up to the first blank line). */
export function parseMetadata(text: string): { name: string; version: string } | null {
  let name: string | undefined;
  let version: string | undefined;
  for (const line of text.split("\n", 200)) {
    const trimmed = line.replace(/\r$/, "");
    if (trimmed === "") break;
    const m = /^(Name|Version):[ \t]*(.*?)[ \t]*$/.exec(trimmed);
    if (!m) continue;
    if (m[1] === "Name") name ??= m[2];
    else version ??= m[2];
  }
  if (!name || !version || !PY_NAME.test(name) || !PY_VERSION.test(version)) return null;
  return { name, version };
}

async function isRealDir(dir: string): Promise<boolean> {
  return (await lstat(dir).catch(() => null))?.isDirectory() ?? false;
}

async function dirNames(dir: string): Promise<string[]> {
  const st = await lstat(dir).catch(() => null);
  if (!st?.isDirectory()) return [];
  return (await readdir(dir)).sort();
}

export async function pythonPackages(siteDir: string): Promise<EnvironmentPackage[]> {
  const out: EnvironmentPackage[] = [];
  for (const entry of await dirNames(siteDir)) {
    if (out.length >= MAX_PACKAGES) break;
    if (!entry.endsWith(".dist-info") || !(await isRealDir(join(siteDir, entry)))) continue;
    const text = await readBounded(join(siteDir, entry, "METADATA"), MAX_METADATA_BYTES);
    const parsed = text === null ? null : parseMetadata(text);
    if (parsed) out.push({ language: "python", ...parsed });
  }
  return out;
}

/** name and version from a package.json, or null. */
export function parsePackageJson(text: string): { name: string; version: string } | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof doc !== "object" || doc === null) return null;
  const { name, version } = doc as { name?: unknown; version?: unknown };
  if (typeof name !== "string" || typeof version !== "string") return null;
  if (!NPM_NAME.test(name) || !NPM_VERSION.test(version)) return null;
  return { name, version };
}

export async function nodePackages(nodeModules: string): Promise<EnvironmentPackage[]> {
  const out: EnvironmentPackage[] = [];
  const add = async (dir: string): Promise<void> => {
    // A link named like a package is not followed: it could lead out of the tree.
    if (!(await isRealDir(dir))) return;
    const text = await readBounded(join(dir, "package.json"), MAX_PACKAGE_JSON_BYTES);
    const parsed = text === null ? null : parsePackageJson(text);
    if (parsed) out.push({ language: "node", ...parsed });
  };
  for (const entry of await dirNames(nodeModules)) {
    if (out.length >= MAX_PACKAGES) break;
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@"))
      for (const inner of (await dirNames(join(nodeModules, entry))).slice(0, MAX_PACKAGES))
        await add(join(nodeModules, entry, inner));
    else await add(join(nodeModules, entry));
  }
  return out.slice(0, MAX_PACKAGES);
}
