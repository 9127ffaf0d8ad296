/**
 * nbformat 4: the schema an uploaded notebook must meet (structure, cell
 * types, sources, outputs, metadata), with size and cell-count limits, and
 * errors that name the cell index and field: `cells[3].source: must be a
 * string or an array of strings`. Python files become notebooks too.
 */
import { z } from "zod";
import type { NotebookConfig } from "../config/schema.js";
import { WardenError } from "../errors.js";

const MultilineSchema = z.union([z.string(), z.array(z.string())], {
  error: "must be a string or an array of strings",
});
const MetadataSchema = z.record(z.string(), z.unknown(), { error: "must be an object" });
const CellIdSchema = z
  .string({ error: "must be a string" })
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, - or _");

const OutputSchema = z.looseObject({
  output_type: z.enum(["stream", "display_data", "execute_result", "error"], {
    error: "must be stream, display_data, execute_result or error",
  }),
});

const CodeCellSchema = z.strictObject({
  id: CellIdSchema.optional(),
  cell_type: z.literal("code"),
  metadata: MetadataSchema.default({}),
  source: MultilineSchema,
  outputs: z.array(OutputSchema, { error: "must be an array" }).default([]),
  execution_count: z
    .number({ error: "must be an integer or null" })
    .int({ error: "must be an integer or null" })
    .min(0)
    .nullable()
    .default(null),
});
const TextCellSchema = (type: "markdown" | "raw") =>
  z.strictObject({
    id: CellIdSchema.optional(),
    cell_type: z.literal(type),
    metadata: MetadataSchema.default({}),
    source: MultilineSchema,
    attachments: z.record(z.string(), z.record(z.string(), MultilineSchema)).optional(),
  });

const CellSchema = z.discriminatedUnion(
  "cell_type",
  [CodeCellSchema, TextCellSchema("markdown"), TextCellSchema("raw")],
  { error: "must be code, markdown or raw" },
);

export function notebookSchema(limits: Pick<NotebookConfig, "maxCells">) {
  return z.strictObject({
    nbformat: z.literal(4),
    nbformat_minor: z.number({ error: "must be an integer" }).int().min(0),
    metadata: MetadataSchema,
    cells: z
      .array(CellSchema, { error: "must be an array" })
      .max(limits.maxCells, `at most ${limits.maxCells} cells (notebooks.maxCells)`),
  });
}

export type Notebook = z.infer<ReturnType<typeof notebookSchema>>;
export type Cell = Notebook["cells"][number];
export type CodeCell = Extract<Cell, { cell_type: "code" }>;

/** `["cells", 3, "source"]` → `cells[3].source` */
function fieldPath(path: PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`))
    .join("");
}

function invalid(message: string): WardenError {
  return new WardenError("INVALID_REQUEST", message);
}

/** Nesting a notebook never needs; deeper JSON would overflow the stack of JSON.stringify. */
export const MAX_DEPTH = 64;

/** True when `value` nests deeper than `limit` (checked without recursion). */
function tooDeep(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Checks a parsed JSON value as an nbformat 4 notebook; throws INVALID_REQUEST naming the field. */
export function validateNotebook(value: unknown, limits: NotebookConfig): Notebook {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid("notebook: must be a JSON object (an .ipynb file)");
  if (tooDeep(value, MAX_DEPTH)) throw invalid(`notebook: nested deeper than ${MAX_DEPTH} levels`);
  const version = (value as { nbformat?: unknown }).nbformat;
  if (typeof version === "number" && version < 4)
    throw invalid(
      `nbformat: version ${version} notebooks are not supported; convert to version 4 (jupyter nbconvert --to notebook)`,
    );
  if (version !== 4) throw invalid("nbformat: must be 4");
  const cells = (value as { cells?: unknown }).cells;
  // Refuse an oversized notebook before validating every one of its cells.
  if (Array.isArray(cells) && cells.length > limits.maxCells)
    throw invalid(
      `cells: ${cells.length} cells exceed the limit of ${limits.maxCells} (notebooks.maxCells)`,
    );
  const parsed = notebookSchema(limits).safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((issue) => {
    const path = fieldPath(issue.path);
    const message =
      issue.code === "unrecognized_keys"
        ? `unknown field(s) ${issue.keys.join(", ")}`
        : issue.message;
    return path && !message.startsWith(`${path}:`) ? `${path}: ${message}` : message;
  });
  const more =
    parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : "";
  throw invalid(`${issues.join("; ")}${more}`);
}

/** Parses .ipynb text; malformed JSON is INVALID_REQUEST, never a crash. */
export function parseNotebook(text: string, limits: NotebookConfig): Notebook {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(`notebook: not valid JSON (${(error as Error).message.slice(0, 120)})`);
  }
  return validateNotebook(value, limits);
}

/** A cell's source as one string. */
export function sourceText(source: string | string[]): string {
  return Array.isArray(source) ? source.join("") : source;
}

/**
 * A Python file as a notebook: `# %%` lines (the percent format of Jupytext,
 * VS Code and Spyder) start cells, `# %% [markdown]` ones markdown cells;
 * a file without them is one code cell.
 */
export function pythonToNotebook(text: string, limits: NotebookConfig): Notebook {
  const cells: Cell[] = [];
  let current: { type: "code" | "markdown"; lines: string[] } = { type: "code", lines: [] };
  const flush = (): void => {
    const source = current.lines.join("\n").replace(/^\n+|\n+$/g, "");
    if (source === "" && cells.length > 0) return;
    if (current.type === "markdown")
      cells.push({
        cell_type: "markdown",
        metadata: {},
        source: source.replace(/^# ?/gm, ""),
      });
    else
      cells.push({ cell_type: "code", metadata: {}, source, outputs: [], execution_count: null });
  };
  for (const line of text.split("\n")) {
    const marker = /^# %%(.*)$/.exec(line);
    if (!marker) {
      current.lines.push(line);
      continue;
    }
    if (current.lines.join("").trim() !== "" || cells.length > 0) flush();
    current = { type: /\[markdown\]/.test(marker[1] ?? "") ? "markdown" : "code", lines: [] };
  }
  flush();
  if (cells.length > limits.maxCells)
    throw invalid(
      `cells: ${cells.length} cells exceed the limit of ${limits.maxCells} (notebooks.maxCells)`,
    );
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: "python3", display_name: "Python 3", language: "python" },
      language_info: { name: "python" },
    },
    cells,
  };
}
