/** Where pip and npm fetch packages, in builds and in sessions. */

/** The package index and npm registry installs use (config `environments.*`, often an internal mirror). */
export interface PackageIndexes {
  pythonIndexUrl: string;
  npmRegistry: string;
}

/**
 * What points pip and npm at the configured index. Reaching it still takes
 * the session's own network allowance: these only say where to look.
 */
export function indexEnv(indexes: PackageIndexes): Record<string, string> {
  const index = new URL(indexes.pythonIndexUrl);
  return {
    PIP_INDEX_URL: indexes.pythonIndexUrl,
    // pip ignores a plain-http index unless told the host is trusted.
    ...(index.protocol === "http:" ? { PIP_TRUSTED_HOST: index.hostname } : {}),
    NPM_CONFIG_REGISTRY: indexes.npmRegistry,
  };
}
