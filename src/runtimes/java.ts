/**
 * Java's entry class, read from the source before it is compiled.
 *
 * javac insists that a public top-level class live in a file of the same name,
 * and `java` must be told the class with `main`. A user sends `public class
 * Foo` as bare code (saved as Main.java), or as a Piston file named anything,
 * or runs `warden run Foo.java`: all must work. So the entry file is scanned
 * on the host (it is the request's own input, bounded by maxCodeBytes; nothing
 * from a sandbox is parsed here) with a small lexer that skips comments,
 * strings, char literals and text blocks, and finds:
 *   - the `package` declaration, if any;
 *   - the top-level types in order, which is public, and which declare a
 *     `static ... main(` member directly in their body.
 * The main class is the public type when it declares main, else the first type
 * that does, else the public type, else the file's own stem. The entry file is
 * then saved as `<public type>.java` so javac accepts it.
 *
 * Why not `java Source.java` (single-file mode): it compiles inside the run,
 * so there would be no compile stage (no compile limits, no compile errors in
 * Piston's `compile` stage), and in Java 17 it cannot use the request's other
 * source files.
 */
import { posix } from "node:path";

export interface JavaEntry {
  /** Fully qualified class to run, e.g. `com.example.Foo`. */
  mainClass: string;
  /** The file name (no directory) javac needs for the entry file, e.g. `Foo.java`. */
  fileName: string;
}

const IDENT = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const TYPE_KEYWORDS = new Set(["class", "interface", "enum", "record"]);

/** Tokens of Java source with comments and literals dropped: identifiers and single punctuation. */
function javaTokens(source: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i]!;
    if (c === "/" && source[i + 1] === "/") {
      const end = source.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (source.startsWith('"""', i)) {
      const end = source.indexOf('"""', i + 3);
      i = end < 0 ? n : end + 3;
    } else if (c === '"' || c === "'") {
      i++;
      while (i < n && source[i] !== c && source[i] !== "\n") i += source[i] === "\\" ? 2 : 1;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      IDENT.lastIndex = i;
      const m = IDENT.exec(source);
      if (m) {
        // `non-sealed` is one modifier spelled with a dash.
        if (m[0] === "non" && source.startsWith("-sealed", i + 3)) {
          tokens.push("non-sealed");
          i += 10;
        } else {
          tokens.push(m[0]);
          i += m[0].length;
        }
      } else {
        tokens.push(c);
        i++;
      }
    }
  }
  return tokens;
}

interface TopType {
  name: string;
  public: boolean;
  hasMain: boolean;
}

/** Package and top-level types of a compilation unit. */
function javaTopLevel(source: string): { pkg: string | null; types: TopType[] } {
  const t = javaTokens(source);
  let pkg: string | null = null;
  const types: TopType[] = [];
  let depth = 0;
  let current: TopType | null = null;
  let pendingPublic = false;
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!;
    if (tok === "{") {
      depth++;
      continue;
    }
    if (tok === "}") {
      depth = Math.max(0, depth - 1);
      if (depth === 0) current = null;
      continue;
    }
    if (depth === 0) {
      if (tok === "package" && types.length === 0) {
        const parts: string[] = [];
        for (k++; k < t.length && t[k] !== ";"; k++) if (t[k] !== ".") parts.push(t[k]!);
        pkg = parts.join(".");
      } else if (tok === "public") pendingPublic = true;
      else if (tok === ";" || tok === "import") pendingPublic = false;
      else if (TYPE_KEYWORDS.has(tok) && t[k - 1] !== "." && t[k - 1] !== "@" && !current) {
        const name = t[k + 1];
        if (name && /^[A-Za-z_$]/.test(name)) {
          current = { name, public: pendingPublic, hasMain: false };
          types.push(current);
        }
        pendingPublic = false;
      }
    } else if (depth === 1 && current && tok === "main" && t[k + 1] === "(") {
      // A member `... static ... main(` directly in the type's body.
      for (let j = k - 1; j >= 0 && !["{", "}", ";"].includes(t[j]!); j--)
        if (t[j] === "static") current.hasMain = true;
    }
  }
  return { pkg, types };
}

/** The entry class and file name for Java source saved as `path`. */
export function javaEntry(source: string, path: string): JavaEntry {
  const { pkg, types } = javaTopLevel(source);
  const stem = posix.basename(path).replace(/\.[^.]*$/, "");
  const publicType = types.find((x) => x.public);
  const main =
    (publicType?.hasMain ? publicType : undefined) ??
    types.find((x) => x.hasMain) ??
    publicType ??
    types[0];
  const className = main?.name ?? stem;
  // javac reads only *.java, and a public type only from its own name's file.
  const fileName = publicType
    ? `${publicType.name}.java`
    : path.endsWith(".java")
      ? posix.basename(path)
      : `${className}.java`;
  return { mainClass: pkg ? `${pkg}.${className}` : className, fileName };
}
