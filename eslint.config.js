// Type-aware lint: floating promises, exhaustive switches and import cycles are
// the bugs that hide in process and timer code.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import importX, { createNodeResolver } from "eslint-plugin-import-x";

const LAYERS = [
  ["interfaces", ["cli", "http", "mcp", "web"]],
  [
    "service",
    ["executions", "sessions", "notebooks", "policy", "artifacts", "judging", "webhooks", "usage"],
  ],
  ["engine", ["sandbox", "runtimes", "network"]],
  ["infrastructure", ["store", "queue", "audit", "config", "contract", "util"]],
];

/** Each layer's folders may not import from any layer above them. */
function layerZones() {
  const zones = [];
  LAYERS.forEach(([name, folders], i) => {
    const above = LAYERS.slice(0, i).flatMap(([, f]) => f.map((d) => `./src/${d}`));
    if (above.length === 0) return;
    for (const folder of folders)
      zones.push({
        target: `./src/${folder}`,
        from: above,
        message: `the ${name} layer imports only from the layers below it`,
      });
  });
  return zones;
}

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "build/",
      "node_modules/",
      "coverage/",
      ".warden/",
      "examples/",
      "native/",
      "test/attacks/programs/",
      "test/generated/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "import-x": importX },
    // Sources import "./x.js" for "./x.ts" (NodeNext): without the alias the
    // import rules could not resolve a single relative import, and say nothing.
    settings: {
      "import-x/resolver-next": [createNodeResolver({ extensionAlias: { ".js": [".ts", ".js"] } })],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "import-x/no-cycle": "error",
      // DESIGN §1: a layer imports only from the layers below it.
      "import-x/no-restricted-paths": ["error", { zones: layerZones() }],
      // Fastify plugins and handlers are async by contract, awaited or not.
      "@typescript-eslint/require-await": "off",
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  {
    files: ["src/cli/**/*.ts"],
    rules: { "no-console": "off" },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringContaining) are typed any.
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off" },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      parserOptions: { projectService: false, project: false },
      globals: { process: "readonly", console: "readonly" },
    },
  },
);
