import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Source of an attack program in test/attacks/programs. */
export function program(name: string): string {
  return readFileSync(join(import.meta.dirname, "programs", name), "utf8");
}
