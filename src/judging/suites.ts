/**
 * Test suites: a tar archive of NAME.in / NAME.out pairs, uploaded once
 * (POST /v1/test-suites) and named by `testsFrom` in any number of runs.
 * Kept through the store's artifacts (owner id = the suite's id), so every
 * API node and worker of a cluster sees it, and expiring with them
 * (artifactRetentionHours). The archive is checked when uploaded and again
 * whenever it is read: strictly, bounded, regular files only — no links, no
 * device, no path outside, no entry after the end.
 */
import { WardenError } from "../errors.js";
import type { JudgingConfig } from "../config/judging-config.js";
import { checkMemberPath, checksumOk, field, octal, TarRefused } from "../sessions/tar-check.js";
import type { ArtifactStore } from "../store/store.js";
import { ulid } from "../util/ids.js";
import type { JudgeCase } from "./types.js";

const BLOCK = 512;
const SUITE_FILE = "suite.tar";
export const SUITE_ID = /^suite_[0-9A-Z]{26}$/;
const CASE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export interface SuiteCase {
  name: string;
  stdin: string;
  expectedOutput?: string | undefined;
}

/** The cases of a suite archive, sorted by name (numbers in order: 2 before 10). */
export function parseSuite(tar: Buffer, bounds: JudgingConfig): SuiteCase[] {
  const inputs = new Map<string, string>();
  const outputs = new Map<string, string>();
  let at = 0;
  let ended = false;
  while (at + BLOCK <= tar.length) {
    const header = tar.subarray(at, at + BLOCK);
    at += BLOCK;
    if (header.every((b) => b === 0)) {
      ended = true;
      break;
    }
    if (!checksumOk(header, true))
      throw new TarRefused(`header at byte ${at - BLOCK}: bad checksum`);
    const type = String.fromCharCode(header[156]!);
    const size = octal(header, 124, 12, "size", true);
    const body = Math.ceil(size / BLOCK) * BLOCK;
    if (at + body > tar.length) throw new TarRefused("archive ends inside a member");
    const content = tar.subarray(at, at + size);
    at += body;
    const prefix = field(header, 345, 155);
    const raw = field(header, 0, 100);
    const path = checkMemberPath(prefix ? `${prefix}/${raw}` : raw);
    if (type === "5") continue; // directories only hold the files
    if (type === "x" || type === "g") {
      // Extended headers: harmless attributes pass, a long name would misname the next member.
      if (/ (path|linkpath)=/.test(content.toString("latin1")))
        throw new TarRefused("long names (pax path) are not supported: keep names under 100 bytes");
      continue;
    }
    if (type !== "0" && type !== "\0")
      throw new TarRefused(`${path}: only regular files and directories are accepted`);
    const base = path.slice(path.lastIndexOf("/") + 1);
    const match = /^(.+)\.(in|out)$/.exec(base);
    if (!match) continue; // a README or the like: not a case
    const name = match[1]!;
    if (!CASE_NAME.test(name))
      throw new TarRefused(`${path}: case names are letters, digits, '.', '_' and '-'`);
    const into = match[2] === "in" ? inputs : outputs;
    if (into.has(name)) throw new TarRefused(`${path}: case ${name} is given twice`);
    if (match[2] === "out" && size > bounds.maxExpectedOutputBytes)
      throw new TarRefused(
        `${path}: larger than ${bounds.maxExpectedOutputBytes} bytes (judging.maxExpectedOutputBytes)`,
      );
    into.set(name, content.toString("utf8"));
    if (inputs.size > bounds.maxTests)
      throw new TarRefused(`more than ${bounds.maxTests} cases (judging.maxTests)`);
  }
  if (!ended) throw new TarRefused("no end-of-archive marker");
  if (!tar.subarray(at).every((b) => b === 0))
    throw new TarRefused("data after the end-of-archive marker");
  for (const name of outputs.keys())
    if (!inputs.has(name)) throw new TarRefused(`${name}.out: there is no ${name}.in`);
  if (inputs.size === 0) throw new TarRefused("no NAME.in files");
  return [...inputs.keys()]
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
    .map((name) => ({ name, stdin: inputs.get(name)!, expectedOutput: outputs.get(name) }));
}

function refused(error: unknown): never {
  if (error instanceof TarRefused)
    throw new WardenError("INVALID_REQUEST", `body: not a test suite: ${error.message}`);
  throw error;
}

/** Checks and keeps an uploaded suite for `userId`. */
export async function saveSuite(
  store: ArtifactStore,
  userId: string,
  tar: Buffer,
  bounds: JudgingConfig,
): Promise<{ id: string; cases: number }> {
  if (tar.length > bounds.maxSuiteMb * 1024 * 1024)
    throw new WardenError(
      "INVALID_REQUEST",
      `body: a test suite is at most ${bounds.maxSuiteMb} MiB (judging.maxSuiteMb)`,
    );
  let cases: SuiteCase[];
  try {
    cases = parseSuite(tar, bounds);
  } catch (error) {
    refused(error);
  }
  // Each suite is kept on disk for artifactRetentionHours: without a bound per user,
  // one key's uploads (64 MiB each, thousands a minute) would fill Warden's disk.
  const limit = bounds.maxSuiteStorageMbPerUser * 1024 * 1024;
  const stored = await store.bytesOf(userId, SUITE_FILE);
  if (stored + tar.length > limit)
    throw new WardenError(
      "INVALID_REQUEST",
      `body: your stored test suites would exceed ${bounds.maxSuiteStorageMbPerUser} MiB (judging.maxSuiteStorageMbPerUser; they hold ${Math.ceil(stored / 1024 / 1024)} MiB and expire after artifactRetentionHours)`,
    );
  const id = `suite_${ulid()}`;
  await store.save({
    ownerId: id,
    userId,
    name: SUITE_FILE,
    mimeType: "application/x-tar",
    content: tar,
  });
  return { id, cases: cases.length };
}

/** A suite's cases, for its owner only (NOT_FOUND otherwise, as for one that never was). */
export async function loadSuite(
  store: ArtifactStore,
  id: string,
  userId: string,
  bounds: JudgingConfig,
): Promise<SuiteCase[]> {
  if (!SUITE_ID.test(id)) throw new WardenError("NOT_FOUND", `no test suite ${id.slice(0, 64)}`);
  const stored = await store.open(id, SUITE_FILE, userId, false).catch((error: unknown) => {
    if (error instanceof WardenError && error.code === "NOT_FOUND")
      throw new WardenError("NOT_FOUND", `testsFrom: no test suite ${id} (or it has expired)`);
    throw error;
  });
  try {
    return parseSuite(stored.content, bounds);
  } catch (error) {
    return refused(error);
  }
}

/** A suite's cases as a run takes them. */
export function suiteCases(cases: SuiteCase[]): JudgeCase[] {
  return cases.map((c) => ({ ...c, points: 1 }));
}

/** Refuses `testsFrom` at submission unless the suite is there and the user's (nothing queued otherwise). */
export async function checkSuiteOwner(
  store: ArtifactStore,
  id: string,
  userId: string,
): Promise<{ bytes: number; createdAt: string }> {
  const found = SUITE_ID.test(id)
    ? (await store.list(id)).find((a) => a.name === SUITE_FILE && a.userId === userId)
    : undefined;
  if (!found)
    throw new WardenError(
      "NOT_FOUND",
      `testsFrom: no test suite ${id.slice(0, 64)} (or it has expired)`,
    );
  return { bytes: found.size, createdAt: found.createdAt };
}
