// Bundles the admin dashboard (src/web) into dist/web: one minified script,
// one stylesheet, one page. No CDN, nothing fetched at run time.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "web");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, "src", "web", "main.ts")],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "none",
  logLevel: "warning",
  outfile: join(out, "app.js"),
});
for (const file of ["index.html", "app.css"])
  copyFileSync(join(root, "src", "web", file), join(out, file));
