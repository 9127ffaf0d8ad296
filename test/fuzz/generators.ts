/**
 * Hostile HTTP input from a seeded PRNG: the same seed gives the same
 * requests, so a failure can be replayed (FUZZ_SEED=<n>).
 */

import { prng } from "../helpers/fuzz.js";

export class Fuzz {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A string from a hostile alphabet: control bytes, NUL, lone surrogates, RTL, path bits. */
  string(maxLength = 64): string {
    const alphabet = [
      "a",
      "Z",
      "0",
      " ",
      "\u0000",
      "\u0001",
      "\u001b",
      "\n",
      "\r\n",
      "\t",
      '"',
      "\\",
      "/",
      "../",
      "%00",
      "%2e%2e/",
      "\ud800",
      "\udfff",
      "\u202e",
      "\ufeff",
      "😀",
      "ß",
      "{",
      "[",
      "$(id)",
      "`",
      "'",
      ";",
      "<script>",
      "__proto__",
    ];
    let out = "";
    const length = this.int(maxLength);
    for (let i = 0; i < length; i++) out += this.pick(alphabet);
    return out;
  }

  /** Any JSON value, nested up to `depth`. */
  value(depth = 3): unknown {
    const kind = this.int(depth > 0 ? 10 : 7);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, -0, 123_456_789_012]);
      case 3:
        return this.string();
      case 4:
        return "x".repeat(this.pick([0, 1, 1000, 100_000]));
      case 5:
        return this.pick(["python", "javascript", "bash", "PYTHON", "", "../python"]);
      case 6:
        return this.pick([{}, [], "", 0]);
      case 7:
        return Array.from({ length: this.int(5) }, () => this.value(depth - 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--) o[this.pick(FIELDS)] = this.value(depth - 1);
        return o;
      }
    }
  }

  /**
   * A request body: mostly a mutated template with an unknown field added
   * (every route's schema is strict, so nothing real is started), sometimes
   * raw junk text.
   */
  body(template: Record<string, unknown>): string {
    switch (this.int(8)) {
      case 0:
        return this.string(200);
      case 1:
        return JSON.stringify(this.value()).slice(0, this.int(200));
      case 2:
        return this.pick([
          '{"__proto__":{"polluted":1}}',
          '{"constructor":{"prototype":{"polluted":1}}}',
          "[".repeat(5000),
          "{".repeat(5000),
          '{"a":1,"a":2}',
          "1e999999",
          '"\\ud800"',
          "null",
          "",
          "\u0000",
        ]);
      default: {
        const o: Record<string, unknown> = { ...template };
        for (let i = 1 + this.int(3); i > 0; i--)
          o[this.pick(Object.keys(template))] = this.value();
        o[`zz_fuzz_${this.int(1000)}`] = this.value(1);
        return JSON.stringify(o);
      }
    }
  }

  contentType(): string | undefined {
    return this.pick([
      "application/json",
      "application/json",
      "application/json; charset=utf-16",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=",
      "multipart/form-data; boundary=xyz",
      "application/octet-stream",
      "*/*",
      "",
      undefined,
    ]);
  }

  /** A path segment: ids that are not ids. */
  segment(): string {
    return percentEncode(
      this.pick([
        "exec_01J0000000000000000000000",
        "sess_00000000000000000000000000",
        "..",
        "%",
        this.string(30),
        "a".repeat(99),
      ]),
    );
  }
}

const FIELDS = [
  "language",
  "code",
  "files",
  "stdin",
  "args",
  "env",
  "timeout",
  "limits",
  "network",
  "wait",
  "userId",
  "version",
  "run_timeout",
  "notebook",
  "content",
  "filename",
  "jsonrpc",
  "method",
  "params",
  "id",
  "name",
  "scopes",
];

/** Percent-encodes every byte but [A-Za-z0-9_-] (lone surrogates become U+FFFD's bytes). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, "utf8")]
    .map((b) =>
      /[A-Za-z0-9_-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, "0")}`,
    )
    .join("");
}
