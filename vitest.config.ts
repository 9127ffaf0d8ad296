/**
 * Three tiers, by folder, so a new test file lands in the right one:
 *   unit     no root, no sandbox: pure functions, and routes through fastify.inject
 *   system   real sandboxes and a real `warden serve` (root)
 *   attacks  hostile programs and input: test/attacks, test/fuzz, *-attacks and *-fuzz files
 *   cluster  test/cluster: PostgreSQL and Redis (WARDEN_TEST_DATABASE_URL, WARDEN_TEST_REDIS_URL),
 *            several `warden serve` nodes; the end-to-end file runs last, alone in one fork
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
const CLUSTER = ["test/cluster/**/*.test.ts"];
// An API node and two or three workers with real sandboxes: alone, so the
// machine's two cores are its own while it kills and drains workers.
const CLUSTER_E2E = ["test/cluster/cluster.test.ts"];

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
          exclude: [...configDefaults.exclude, ...UNIT, ...HOSTILE, ...CLUSTER],
        },
      },
      { extends: true, test: { name: "attacks", include: HOSTILE } },
      {
        extends: true,
        test: {
          name: "cluster",
          include: CLUSTER,
          exclude: [...configDefaults.exclude, ...HOSTILE, ...CLUSTER_E2E],
        },
      },
      {
        extends: true,
        test: {
          name: "cluster-e2e",
          include: CLUSTER_E2E,
          testTimeout: 240_000,
          hookTimeout: 240_000,
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
