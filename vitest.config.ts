/**
 * Three tiers, by folder, so a new test file lands in the right one:
 *   unit     no root, no sandbox: pure functions, and routes through fastify.inject
 *   system   real sandboxes and a real `warden serve` (root)
 *   attacks  hostile programs and input: test/attacks, test/fuzz, *-attacks and *-fuzz files
 * `npm test` runs all three in one pool; `npm run test:unit` needs no root.
 */
import { configDefaults, defineConfig } from "vitest/config";

const HOSTILE = [
  "test/attacks/**/*.test.ts",
  "test/fuzz/**/*.test.ts",
  "test/**/*-attacks.test.ts",
  "test/**/*-fuzz.test.ts",
];
const UNIT = ["test/unit/**/*.test.ts"];

export default defineConfig({
  test: {
    // Sandboxes are real processes: give them room on a shared 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One pool for every project: the tiers' files interleave over two workers.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "unit", include: UNIT } },
      {
        extends: true,
        test: {
          name: "system",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...UNIT, ...HOSTILE],
        },
      },
      { extends: true, test: { name: "attacks", include: HOSTILE } },
    ],
  },
});
