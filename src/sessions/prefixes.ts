/**
 * Where a session installs packages: a venv and an npm prefix in its own
 * workspace, so `pip install`, `%pip install` and `npm install -g` work the
 * way they do on a laptop (PEP 668 respected: the system's Python is never
 * written to) and what they install counts against the session's disk
 * limit. The agent writes the venv before it says ready (native/agent.cjs,
 * preparePrefixes); this is the environment that points everything at it.
 */
import { BASE_ENV } from "../sandbox/box.js";
import { WORKSPACE } from "../sandbox/bwrap-args.js";
import { indexEnv, type PackageIndexes } from "../environments/indexes.js";

export const SESSION_VENV = `${WORKSPACE}/.venv`;
export const SESSION_NPM_PREFIX = `${WORKSPACE}/.npm-global`;

/**
 * The variables every process of a session starts with: `python` (the
 * session's kernels included) is the venv's, layered on `python` (the
 * system's, already resolved to a real path) with the system's and the
 * environment's packages visible under it.
 */
export function prefixEnv(python: string | null, indexes: PackageIndexes): Record<string, string> {
  const env: Record<string, string> = {
    ...indexEnv(indexes),
    NPM_CONFIG_PREFIX: SESSION_NPM_PREFIX,
    // `require` of what `npm install -g` put in the session's prefix.
    NODE_PATH: `${SESSION_NPM_PREFIX}/lib/node_modules`,
    PATH: `${SESSION_NPM_PREFIX}/bin:${BASE_ENV.PATH}`,
  };
  if (!python) return env;
  return {
    ...env,
    VIRTUAL_ENV: SESSION_VENV,
    WARDEN_PYTHON_BASE: python,
    WARDEN_PYTHON: `${SESSION_VENV}/bin/python3`,
    PATH: `${SESSION_VENV}/bin:${env.PATH}`,
    // The session's disk is small and its own: no second copy of every download.
    PIP_NO_CACHE_DIR: "1",
    PIP_DISABLE_PIP_VERSION_CHECK: "1",
  };
}
