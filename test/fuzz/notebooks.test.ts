/**
 * Fuzz tier, notebooks: malformed and hostile nbformat documents from a
 * seeded PRNG (FUZZ_SEED replays a run) at the format boundary, as text
 * (parseNotebook) and as parsed JSON (validateNotebook, the REST path). Each
 * either validates or is refused with INVALID_REQUEST whose message names the
 * field (`cells[3].source: ...`) and carries no stack or host path; never
 * another kind of throw; each document takes bounded time.
 */
import { describe, expect, it } from "vitest";
import { NotebookConfigSchema } from "../../src/config/schema.js";
import { WardenError } from "../../src/errors.js";
import { parseNotebook, validateNotebook } from "../../src/notebooks/format.js";
import { fuzzSeed } from "../helpers/fuzz.js";
import { Fuzz } from "./generators.js";

const SEED = fuzzSeed(20_251_130);
const DOCUMENTS = 2000;
const LIMITS = NotebookConfigSchema.parse({ maxCells: 50 });
/** Generous (work per document is linear in its size); a hang or a blow-up would be far past it. */
const MAX_MS_PER_DOCUMENT = 5000;

function cell(f: Fuzz): Record<string, unknown> {
  const type = f.pick(["code", "markdown", "raw"]);
  const c: Record<string, unknown> = { cell_type: type, metadata: {}, source: ["x = 1\n", "x"] };
  if (type === "code") Object.assign(c, { outputs: [], execution_count: null });
  if (f.chance(0.3)) c.id = `c${f.int(1000)}`;
  return c;
}

function valid(f: Fuzz): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } },
    cells: Array.from({ length: f.int(6) }, () => cell(f)),
  };
}

const HOSTILE_VALUES: ((f: Fuzz) => unknown)[] = [
  (f) => f.value(),
  (f) => f.string(100),
  () => ({ $: 1 }),
  () => [[[[[]]]]],
  (f) => f.pick([1e308, -1, 1.5, 2 ** 53 + 1, Number.NaN, -0]),
  (f) => "x".repeat(f.pick([65, 1000, 300_000])),
  (f) => Array.from({ length: f.pick([51, 3000]) }, () => f.value(1)),
  (f) => nested(f.pick([63, 64, 65, 10_000])),
];

/** Objects nested `depth` levels (built without recursion). */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

/** A notebook with one to three hostile mutations somewhere in it. */
function mutate(f: Fuzz, doc: Record<string, unknown>): unknown {
  for (let i = 1 + f.int(3); i > 0; i--) {
    const cells = Array.isArray(doc.cells) ? (doc.cells as unknown[]) : [];
    const objects = cells.filter(
      (c): c is Record<string, unknown> => typeof c === "object" && c !== null && !Array.isArray(c),
    );
    const target = objects.length > 0 && f.chance(0.6) ? f.pick(objects) : doc;
    const key = f.pick([
      ...Object.keys(target),
      "source",
      "outputs",
      "attachments",
      "zz_unknown",
      "__proto__",
      "constructor",
      "prototype",
    ]);
    switch (f.int(4)) {
      case 0:
        delete target[key];
        break;
      case 1:
        // A real own key, as JSON.parse would make it (an assignment to __proto__ would not).
        Object.defineProperty(target, key, {
          value: f.pick(HOSTILE_VALUES)(f),
          enumerable: true,
          configurable: true,
          writable: true,
        });
        break;
      case 2:
        if (target === doc)
          doc.cells = Array.from({ length: f.pick([51, 5000]) }, () => cell(f)); // past maxCells
        else target.outputs = [{ output_type: f.pick(["stream", "bogus", 1]), text: f.value() }];
        break;
      default:
        if (cells.length > 0) cells[f.int(cells.length)] = f.pick(HOSTILE_VALUES)(f);
    }
  }
  return f.chance(0.05) ? f.pick([null, [], "nb", 4, [doc]]) : doc;
}

/** Text a broken file could hold: truncated, spliced with junk, not JSON at all. */
function text(f: Fuzz, doc: unknown): string {
  let json: string;
  try {
    json = JSON.stringify(doc);
  } catch {
    return "{}"; // too deep for the test's own stringify: the JSON path covers it
  }
  switch (f.int(5)) {
    case 0:
      return json.slice(0, f.int(json.length));
    case 1:
      return f.string(300);
    case 2:
      return f.pick(["[".repeat(100_000), '{"a":'.repeat(50_000), "\ufeff{}", "", "1e999"]);
    default:
      return json;
  }
}

function check(run: () => unknown, where: string): number {
  const started = performance.now();
  try {
    run();
  } catch (error) {
    expect(error, where).toBeInstanceOf(WardenError);
    const { code, message } = error as WardenError;
    expect(code, where).toBe("INVALID_REQUEST");
    // A field path (`cells[2].outputs[0].output_type:`), or the document as a whole.
    expect(message, where).toMatch(
      /^(notebook|nbformat|nbformat_minor|metadata|cells)\b[^\n]*?: |^unknown field\(s\)/,
    );
    expect(message, where).not.toMatch(/\n\s+at |\/work\/|node_modules/);
    expect(message.length, `${where}: message length`).toBeLessThan(4096);
  }
  return performance.now() - started;
}

describe(`notebook fuzz (FUZZ_SEED=${SEED})`, () => {
  it(`${DOCUMENTS} hostile documents: clean field errors, never another throw`, () => {
    const f = new Fuzz(SEED);
    let slowest = 0;
    for (let i = 0; i < DOCUMENTS; i++) {
      const where = `document ${i} (FUZZ_SEED=${SEED})`;
      const doc = mutate(f, valid(f));
      let ms: number;
      if (f.chance(0.5)) {
        const input = text(f, doc);
        ms = check(() => parseNotebook(input, LIMITS), `${where} as text`);
      } else ms = check(() => validateNotebook(doc, LIMITS), `${where} as JSON`);
      slowest = Math.max(slowest, ms);
    }
    expect(slowest).toBeLessThan(MAX_MS_PER_DOCUMENT);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
