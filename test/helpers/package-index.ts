/**
 * A package index on the loopback for tests that install packages without a
 * public index: a PEP 503 simple index (pip) and a minimal npm registry
 * (package document + tarball), both on one HTTP server on 127.0.0.1.
 *
 * Sandboxes reach it by a name, through the egress proxy: give Warden
 * `index.networkConfig()` (a static answer for `index.host` → 127.0.0.1 and
 * the name on network.privateHosts), and `index.pythonIndexUrl` /
 * `index.npmRegistry` as the environment index URLs (or PIP_INDEX_URL and
 * npm_config_registry in a session). No real DNS is asked.
 *
 *   const index = await PackageIndex.start();
 *   index.addWheel(await makeWheel(dir, { name: "demo", version: "1.0.0", files: {...} }));
 *   index.addNpm(await makeNpmTarball(dir, { name: "demo", version: "1.0.0", files: {...} }));
 *   ...
 *   await index.stop();
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { EnvironmentsConfigSchema } from "../../src/config/environments.js";
import type { BuildContext } from "../../src/environments/build.js";
import type { EnvironmentStore } from "../../src/environments/store.js";
import { config, testHost } from "./sandbox.js";

export interface BuiltPackage {
  name: string;
  version: string;
  /** File name as served (e.g. demo-1.0.0-py3-none-any.whl, demo-1.0.0.tgz). */
  fileName: string;
  content: Buffer;
  /** npm: the package.json, also served in the registry's package document. */
  manifest?: Record<string, unknown>;
}

/** PEP 503's normal form of a project name. */
export function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** Files of a package, by relative path; a string is UTF-8 text. */
export type PackageFiles = Record<string, string | Buffer>;

function writeFiles(root: string, files: PackageFiles): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

/**
 * A pure-Python wheel: `files` (e.g. {"demo/__init__.py": "X = 1\n"}) plus a
 * `<name>-<version>.dist-info` with METADATA, WHEEL and RECORD, zipped by the
 * system Python's zipfile. Written to `outDir` too (for `--from-dir`).
 */
export function makeWheel(
  outDir: string,
  pkg: { name: string; version: string; files: PackageFiles },
): BuiltPackage {
  const stage = mkdtempSync(join(tmpdir(), "warden-wheel-"));
  try {
    const dist = `${pkg.name.replace(/-/g, "_")}-${pkg.version}`;
    const info = `${dist}.dist-info`;
    writeFiles(stage, pkg.files);
    writeFiles(stage, {
      [`${info}/METADATA`]: `Metadata-Version: 2.1\nName: ${pkg.name}\nVersion: ${pkg.version}\nSummary: test package\n\n`,
      [`${info}/WHEEL`]:
        "Wheel-Version: 1.0\nGenerator: warden-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    });
    const record = [
      ...Object.keys(pkg.files),
      `${info}/METADATA`,
      `${info}/WHEEL`,
      `${info}/RECORD`,
    ]
      .map((p) => `${p},,`)
      .join("\n");
    writeFiles(stage, { [`${info}/RECORD`]: `${record}\n` });
    const fileName = `${dist}-py3-none-any.whl`;
    const tops = [...new Set(Object.keys(pkg.files).map((p) => p.split("/")[0]!)), info];
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, fileName);
    execFileSync("/usr/bin/python3", ["-m", "zipfile", "-c", out, ...tops], { cwd: stage });
    return { name: pkg.name, version: pkg.version, fileName, content: readFileSync(out) };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * An npm tarball (what `npm pack` makes: everything under `package/`), with a
 * package.json from name, version and `scripts` (install hooks run inside the
 * build sandbox: how the hostile-installer tests attack).
 */
export function makeNpmTarball(
  outDir: string,
  pkg: { name: string; version: string; files: PackageFiles; scripts?: Record<string, string> },
): BuiltPackage {
  const stage = mkdtempSync(join(tmpdir(), "warden-npm-"));
  try {
    const manifest = {
      name: pkg.name,
      version: pkg.version,
      main: "index.js",
      scripts: pkg.scripts ?? {},
    };
    writeFiles(join(stage, "package"), {
      "package.json": JSON.stringify(manifest, null, 2),
      ...pkg.files,
    });
    const fileName = `${pkg.name.replace(/^@/, "").replace("/", "-")}-${pkg.version}.tgz`;
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, fileName);
    execFileSync("tar", ["-czf", out, "--owner=0", "--group=0", "-C", stage, "package"]);
    return { name: pkg.name, version: pkg.version, fileName, content: readFileSync(out), manifest };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export class PackageIndex {
  /** The name sandboxes use for the index (resolved statically to 127.0.0.1, never by DNS). */
  readonly host: string;
  readonly port: number;
  private readonly wheels = new Map<string, BuiltPackage[]>();
  private readonly npm = new Map<string, BuiltPackage[]>();
  /** Request paths seen, in order (what a test can assert was fetched). */
  readonly requests: string[] = [];

  private constructor(
    private readonly server: Server,
    host: string,
  ) {
    this.host = host;
    this.port = (server.address() as AddressInfo).port;
  }

  static async start(host = "pkgs.warden.test"): Promise<PackageIndex> {
    const box: { index?: PackageIndex } = {};
    const server = createServer((req, res) => box.index!.answer(req.url ?? "/", res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    box.index = new PackageIndex(server, host);
    return box.index;
  }

  get base(): string {
    return `http://${this.host}:${this.port}`;
  }
  get pythonIndexUrl(): string {
    return `${this.base}/simple/`;
  }
  get npmRegistry(): string {
    return `${this.base}/npm/`;
  }

  /** Config for Warden's egress: the index's name answers 127.0.0.1 and may be private. */
  networkConfig(): { staticHosts: Record<string, string>; privateHosts: string[] } {
    return { staticHosts: { [this.host]: "127.0.0.1" }, privateHosts: [this.host] };
  }

  /** Config for environments built from this index. */
  environmentsConfig(): { pythonIndexUrl: string; npmRegistry: string; extraHosts: string[] } {
    return { pythonIndexUrl: this.pythonIndexUrl, npmRegistry: this.npmRegistry, extraHosts: [] };
  }

  /** What a build needs to fetch from this index: this host's sandboxes, `store`, `build` bounds. */
  async buildContext(
    store: EnvironmentStore,
    build: Record<string, number>,
  ): Promise<BuildContext> {
    return {
      host: await testHost(),
      store,
      config: EnvironmentsConfigSchema.parse({ ...this.environmentsConfig(), build }),
      network: this.networkConfig(),
      searchPath: config.sandbox.searchPath,
    };
  }

  addWheel(pkg: BuiltPackage): void {
    const key = normalize(pkg.name);
    this.wheels.set(key, [...(this.wheels.get(key) ?? []), pkg]);
  }

  addNpm(pkg: BuiltPackage): void {
    this.npm.set(pkg.name, [...(this.npm.get(pkg.name) ?? []), pkg]);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(url: string, res: ServerResponse): void {
    this.requests.push(url);
    const path = decodeURIComponent(url.split("?")[0]!);
    const send = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    let m: RegExpExecArray | null;
    if (path === "/simple/") {
      const links = [...this.wheels.keys()].map((k) => `<a href="${k}/">${k}</a>`).join("\n");
      return send(200, "text/html", `<!DOCTYPE html><html><body>\n${links}\n</body></html>\n`);
    }
    if ((m = /^\/simple\/([^/]+)\/$/.exec(path))) {
      const pkgs = this.wheels.get(normalize(m[1]!));
      if (!pkgs) return send(404, "text/plain", "not found\n");
      const links = pkgs
        .map((p) => {
          const sha = createHash("sha256").update(p.content).digest("hex");
          return `<a href="/files/${p.fileName}#sha256=${sha}">${p.fileName}</a>`;
        })
        .join("\n");
      return send(200, "text/html", `<!DOCTYPE html><html><body>\n${links}\n</body></html>\n`);
    }
    if ((m = /^\/files\/([^/]+)$/.exec(path))) {
      const file = [...this.wheels.values()].flat().find((p) => p.fileName === m![1]);
      return file
        ? send(200, "application/octet-stream", file.content)
        : send(404, "text/plain", "not found\n");
    }
    if ((m = /^\/npm\/-\/([^/]+)$/.exec(path))) {
      const file = [...this.npm.values()].flat().find((p) => p.fileName === m![1]);
      return file
        ? send(200, "application/octet-stream", file.content)
        : send(404, "text/plain", "not found\n");
    }
    if ((m = /^\/npm\/(@[^/]+\/[^/]+|[^/@][^/]*)$/.exec(path))) {
      const pkgs = this.npm.get(m[1]!);
      if (!pkgs) return send(404, "application/json", JSON.stringify({ error: "Not found" }));
      const versions: Record<string, unknown> = {};
      for (const p of pkgs)
        versions[p.version] = {
          ...p.manifest,
          ...(Object.keys((p.manifest?.scripts as object | undefined) ?? {}).length
            ? { hasInstallScript: true }
            : {}),
          name: p.name,
          version: p.version,
          dist: {
            tarball: `${this.npmRegistry}-/${p.fileName}`,
            shasum: createHash("sha1").update(p.content).digest("hex"),
            integrity: `sha512-${createHash("sha512").update(p.content).digest("base64")}`,
          },
        };
      const doc = { name: m[1], "dist-tags": { latest: pkgs.at(-1)!.version }, versions };
      return send(200, "application/json", JSON.stringify(doc));
    }
    send(404, "text/plain", "not found\n");
  }
}
