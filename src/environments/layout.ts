/**
 * How an environment appears inside a sandbox, and where it lives on the host.
 *
 * The tree is bound read-only at /.warden/env (one shared tree, no copy):
 *   python/             what `pip install --target` made
 *   site/sitecustomize.py   Warden's own: puts python/ on sys.path
 *   node/node_modules/  what `npm install --prefix` made, also bound at /node_modules
 *
 * Python: PYTHONPATH names site/, whose sitecustomize adds python/ as a site
 * directory (its .pth files processed) AFTER a venv's own site-packages and
 * BEFORE the system's: `import pkg` works in plain python3 and in a venv made
 * with --system-site-packages, a package the user installs in that venv wins
 * over the environment's, and the environment's wins over the host's.
 * Node: /node_modules is the last directory both require() and ESM `import`
 * search from any file under /workspace or /tmp, after the workspace's own
 * node_modules, so no variable is needed at all.
 */
import { join } from "node:path";
import type { ReadOnlyMount, SandboxEnvironment } from "../sandbox/types.js";

export const ENV_TARGET = "/.warden/env";
export const NODE_MODULES_TARGET = "/node_modules";
export const PYTHON_DIR = "python";
export const SITE_DIR = "site";
export const NODE_DIR = "node";

export const SITECUSTOMIZE = `# Written by Warden: the environment's packages on sys.path, after a venv's
# own site-packages and before the system's.
def _warden_environment():
    import site, sys
    n = len(sys.path)
    site.addsitedir("${ENV_TARGET}/${PYTHON_DIR}")
    added = sys.path[n:]
    del sys.path[n:]
    in_venv = sys.prefix != sys.base_prefix
    at = len(sys.path)
    for i, p in enumerate(sys.path):
        if p.endswith("-packages") and not (in_venv and p.startswith(sys.prefix + "/")):
            at = i
            break
    sys.path[at:at] = added


_warden_environment()
del _warden_environment
`;

/** What a run needs to use an environment: the box's binds and Warden's own variables. */
export type EnvironmentMount = SandboxEnvironment;

export function mountOf(
  name: string,
  key: string,
  tree: string,
  languages: readonly string[],
): EnvironmentMount {
  const binds: ReadOnlyMount[] = [{ source: tree, target: ENV_TARGET }];
  if (languages.includes("node"))
    binds.push({ source: join(tree, NODE_DIR, "node_modules"), target: NODE_MODULES_TARGET });
  const env: Record<string, string> = languages.includes("python")
    ? { PYTHONPATH: `${ENV_TARGET}/${SITE_DIR}` }
    : {};
  return { name, key, binds, env };
}
