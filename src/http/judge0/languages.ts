/**
 * Judge0 CE's language ids for the languages Warden has. A client hard-codes
 * ids (71 for Python 3, 54 for C++...), so every id Judge0 CE gives a version
 * of one of our languages is accepted and runs our one runtime of it; GET
 * /languages lists one id per language (the best known, "primary"), named
 * with the version really installed here, not Judge0's.
 */
import { basename } from "node:path";
import type { RuntimeRegistry } from "../../runtimes/registry.js";
import type { ExecutionFrontend } from "../../executions/frontend.js";

export interface Judge0Language {
  language: string;
  /** Listed by GET /languages. */
  primary: number;
  /** Other Judge0 CE ids of the same language (other versions there), accepted too. */
  aliases: number[];
  /**
   * Ids Judge0 archived (its documentation's examples still use 4, C): accepted
   * here so those examples run, listed by /languages/all as archived.
   */
  archived?: number[];
  /** How Judge0 names it, before our version: `label(version, tools)`. */
  label: (version: string, tools: Record<string, string>) => string;
}

const compiler = (tool: string | undefined): string =>
  tool && basename(tool).includes("clang") ? "Clang" : "GCC";

export const JUDGE0_LANGUAGES: readonly Judge0Language[] = [
  { language: "bash", archived: [1, 2], primary: 46, aliases: [], label: (v) => `Bash (${v})` },
  {
    language: "c",
    archived: [4, 5, 6, 7, 8, 9],
    primary: 50,
    aliases: [48, 49, 75, 103],
    label: (v, t) => `C (${compiler(t.cc)} ${v})`,
  },
  {
    language: "cpp",
    archived: [10, 11, 12, 13, 14, 15],
    primary: 54,
    aliases: [52, 53, 76, 105],
    label: (v, t) => `C++ (${compiler(t.cxx)} ${v})`,
  },
  {
    language: "go",
    archived: [22],
    primary: 60,
    aliases: [95, 106, 107],
    label: (v) => `Go (${v})`,
  },
  {
    language: "java",
    archived: [26, 27, 28],
    primary: 62,
    aliases: [91],
    label: (v) => `Java (OpenJDK ${v})`,
  },
  {
    language: "javascript",
    archived: [29, 30],
    primary: 63,
    aliases: [93, 97, 102],
    label: (v) => `JavaScript (Node.js ${v})`,
  },
  {
    language: "python",
    archived: [34, 35],
    primary: 71,
    aliases: [92, 100, 109, 113],
    label: (v) => `Python (${v})`,
  },
  { language: "rust", archived: [42], primary: 73, aliases: [108], label: (v) => `Rust (${v})` },
  {
    language: "typescript",
    primary: 74,
    aliases: [94, 101],
    label: (v) => `TypeScript (Node.js ${v})`,
  },
];

const byId = new Map<number, Judge0Language>();
for (const l of JUDGE0_LANGUAGES)
  for (const id of [l.primary, ...l.aliases, ...(l.archived ?? [])]) byId.set(id, l);

/** The Judge0 language an id names, whether or not it is installed here. */
export function judge0Language(id: number): Judge0Language | undefined {
  return byId.get(id);
}

export interface InstalledLanguage {
  id: number;
  name: string;
  language: string;
  primary: boolean;
  archived: boolean;
  sourceFile: string;
  compileCmd: string | null;
  runCmd: string;
}

/** `{tool}` placeholders as the tool's name, `{file}` as the source file: a readable command. */
function command(argv: readonly string[] | undefined, file: string): string | null {
  if (!argv) return null;
  return argv
    .map((a) => a.replace(/\{([a-zA-Z]+)\}/g, (_, n: string) => (n === "file" ? file : n)))
    .join(" ");
}

/**
 * The Judge0 languages runnable here, every accepted id, primary ones first.
 * A cluster API node asks its workers (service.runtimes) what they can run.
 */
export async function installedLanguages(
  registry: RuntimeRegistry,
  service: ExecutionFrontend,
): Promise<InstalledLanguage[]> {
  const local = await registry.list();
  const remote = service.runtimes ? await service.runtimes() : null;
  const out: InstalledLanguage[] = [];
  for (const kind of ["primary", "alias", "archived"] as const) {
    for (const l of JUDGE0_LANGUAGES) {
      const here = local.find((r) => r.language === l.language);
      const runs = remote
        ? remote.find((r) => r.language === l.language)
        : here?.available
          ? here
          : null;
      const def = registry.lookup(l.language);
      if (!runs || !def) continue;
      const name = l.label(runs.version ?? "unknown", here?.tools ?? {});
      const ids =
        kind === "primary" ? [l.primary] : kind === "alias" ? l.aliases : (l.archived ?? []);
      for (const id of ids)
        out.push({
          id,
          name,
          language: l.language,
          primary: kind === "primary",
          archived: kind === "archived",
          sourceFile: def.fileName,
          compileCmd: command(def.compile, def.fileName),
          runCmd: command(def.run, def.fileName)!,
        });
    }
  }
  return out;
}
