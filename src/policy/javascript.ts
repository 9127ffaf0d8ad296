/**
 * JavaScript analysis with acorn, in process. acorn is a pure parser (no code
 * runs), the input is capped here (per unit and in all: it runs on the event
 * loop), a stack overflow on deeply nested input is caught (RangeError) and
 * reported, and anything else a unit throws becomes an `analysis-failed`
 * finding, so parsing in process is safe. The walk and the name resolution
 * below are iterative and linear for the same reason.
 */
import { parse, type Node, type Options } from "acorn";
import type { Finding, Severity } from "../contract/policy.js";
import { sortFindings, type SourceUnit } from "./findings.js";

type AnyNode = Node & Record<string, unknown>;

const PROCESS_FNS = new Set([
  "exec",
  "execSync",
  "execFile",
  "execFileSync",
  "spawn",
  "spawnSync",
  "fork",
]);
const NETWORK_MODULES = new Set(["net", "dgram", "http", "https", "http2", "tls", "dns"]);
const WRITE_FNS = new Set([
  "writeFile",
  "writeFileSync",
  "appendFile",
  "appendFileSync",
  "createWriteStream",
  "openSync",
  "open",
]);
const SAFE_ROOTS = ["/workspace", "/tmp"];
const MAX_FINDINGS = 500;
/** Longest member chain read as a name (`a.b.c...`); longer ones are not names. */
const MAX_CHAIN = 64;
/** Most nodes `decodes` looks at under one eval argument: nested evals must stay linear. */
const MAX_DECODE_SCAN = 10_000;

const OPTIONS: Options = {
  ecmaVersion: "latest",
  locations: true,
  allowReturnOutsideFunction: true,
  allowAwaitOutsideFunction: true,
  allowHashBang: true,
};

const moduleName = (s: string): string => s.replace(/^node:/, "").split("/")[0]!;
const str = (n: unknown): string | null => {
  const node = n as AnyNode | undefined;
  return node?.type === "Literal" && typeof node.value === "string" ? node.value : null;
};

/** Every node below `root`, without recursion (deep input must not overflow the stack). */
function* nodes(root: AnyNode): Generator<AnyNode> {
  const stack: AnyNode[] = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    yield node;
    for (const [key, value] of Object.entries(node)) {
      if (key === "loc") continue;
      for (const child of Array.isArray(value) ? value : [value])
        if (child && typeof (child as AnyNode).type === "string") stack.push(child as AnyNode);
    }
  }
}

function analyseUnit(unit: SourceUnit): Finding[] {
  const findings: Finding[] = [];
  let high = 0;
  const add = (ruleId: string, severity: Severity, message: string, node: AnyNode): void => {
    // Past the cap only high findings are kept: low ones must not crowd out what block mode refuses.
    if (findings.length >= MAX_FINDINGS && (severity !== "high" || high >= MAX_FINDINGS)) return;
    if (severity === "high") high++;
    const start = node.loc?.start ?? { line: 1, column: 0 };
    findings.push({
      ruleId,
      severity,
      message,
      line: start.line,
      column: start.column + 1,
      cell: unit.cell,
    });
  };
  let program: AnyNode;
  try {
    program = parse(unit.source, { ...OPTIONS, sourceType: "module" }) as unknown as AnyNode;
  } catch {
    try {
      program = parse(unit.source, { ...OPTIONS, sourceType: "script" }) as unknown as AnyNode;
    } catch (error) {
      const root = { type: "Program", loc: { start: { line: 1, column: 0 } } } as AnyNode;
      // acorn turns its own stack overflow into "Not enough stack space"; a RangeError may still escape.
      if (error instanceof RangeError || /stack space/.test((error as Error).message))
        add("analysis-failed", "high", "too deeply nested to analyse", root);
      else add("syntax-error", "low", `does not parse: ${(error as Error).message}`, root);
      return findings;
    }
  }
  // Local name → module (or module.export) it came from.
  const origin = new Map<string, string>();
  const bind = (pattern: AnyNode | undefined, mod: string): void => {
    if (pattern?.type === "Identifier") origin.set(pattern.name as string, mod);
    if (pattern?.type === "ObjectPattern")
      for (const p of pattern.properties as AnyNode[]) {
        const key = (p.key as AnyNode | undefined)?.name as string | undefined;
        const value = p.value as AnyNode | undefined;
        if (key && value?.type === "Identifier") origin.set(value.name as string, `${mod}.${key}`);
      }
  };
  const checkModule = (mod: string, node: AnyNode): void => {
    const root = moduleName(mod);
    if (root === "child_process")
      add("process-import", "medium", `loads ${mod}: can start processes`, node);
    else if (NETWORK_MODULES.has(root))
      add("network", "medium", `loads ${mod}: opens network connections`, node);
    else if (root === "vm") add("dynamic-exec", "medium", `loads ${mod}: runs code strings`, node);
  };
  const requireOf = (n: AnyNode | undefined): string | null =>
    n?.type === "CallExpression" &&
    (n.callee as AnyNode).type === "Identifier" &&
    (n.callee as AnyNode).name === "require"
      ? str((n.arguments as AnyNode[])[0])
      : null;
  /**
   * `a.b.c` as a dotted name, its root resolved through imports; `require("m").f`
   * counts as `m.f`. Iterative and capped: a chain thousands of members long
   * must neither recurse off the stack nor cost quadratic time (this runs on
   * every member expression), so past MAX_CHAIN it is simply not a name.
   */
  const nameOf = (n: AnyNode): string | null => {
    const parts: string[] = [];
    let node = n;
    while (node.type === "MemberExpression") {
      if (node.computed || parts.length >= MAX_CHAIN) return null;
      parts.push((node.property as AnyNode).name as string);
      node = node.object as AnyNode;
    }
    let root: string | null = null;
    if (node.type === "Identifier") root = origin.get(node.name as string) ?? (node.name as string);
    else {
      const mod = requireOf(node);
      if (mod) root = moduleName(mod);
    }
    return root === null ? null : [root, ...parts.reverse()].join(".");
  };
  const decodes = (n: AnyNode): boolean => {
    let budget = MAX_DECODE_SCAN;
    for (const sub of nodes(n)) {
      if (--budget < 0) return false;
      if (sub.type !== "CallExpression") continue;
      const name = nameOf(sub.callee as AnyNode) ?? "";
      const args = sub.arguments as AnyNode[];
      if (name === "atob" || name.endsWith("unescape")) return true;
      if (name === "Buffer.from" && ["base64", "hex", "base64url"].includes(str(args[1]) ?? ""))
        return true;
    }
    return false;
  };

  const all = [...nodes(program)];
  for (const node of all) {
    if (node.type === "ImportDeclaration") {
      const mod = str(node.source)!;
      checkModule(mod, node);
      for (const s of node.specifiers as AnyNode[]) {
        const imported = (s.imported as AnyNode | undefined)?.name as string | undefined;
        origin.set(
          (s.local as AnyNode).name as string,
          imported ? `${moduleName(mod)}.${imported}` : moduleName(mod),
        );
      }
    } else if (node.type === "VariableDeclarator") {
      const mod = requireOf(node.init as AnyNode | undefined);
      if (mod) bind(node.id as AnyNode, moduleName(mod));
    }
  }
  for (const node of all) {
    if (node.type === "ImportExpression" && !str(node.source))
      add("dynamic-import", "medium", "import() of a module chosen at run time", node);
    if (node.type === "MemberExpression") {
      const prop = (node.property as AnyNode).name;
      const inner = node.object as AnyNode;
      if (
        prop === "constructor" &&
        inner.type === "MemberExpression" &&
        (inner.property as AnyNode).name === "constructor"
      )
        add("introspection-escape", "high", ".constructor.constructor reaches Function", node);
      if (nameOf(node) === "process.binding" || nameOf(node) === "process.dlopen")
        add("native-code", "high", `${nameOf(node)}: native bindings`, node);
    }
    if (node.type !== "CallExpression" && node.type !== "NewExpression") continue;
    const callee = node.callee as AnyNode;
    const args = node.arguments as AnyNode[];
    const name = nameOf(callee) ?? "";
    if (name === "require") {
      const mod = str(args[0]);
      if (mod) checkModule(mod, node);
      else add("dynamic-import", "medium", "require() of a module chosen at run time", node);
    } else if (name === "eval" || name === "Function" || /^vm\.(run|compile|Script)/.test(name)) {
      if (args.some(decodes))
        add("obfuscated-exec", "high", `${name}() of decoded (base64/hex) data: hidden code`, node);
      else add("dynamic-exec", "high", `${name}(): runs code built at run time`, node);
    } else if (name.startsWith("child_process.") && PROCESS_FNS.has(name.split(".")[1]!)) {
      add("process-exec", "high", `${name}(): runs another program`, node);
    } else if (name === "fetch" || name === "WebSocket") {
      add("network", "medium", `${name}(): network access`, node);
    } else if (
      /^fs(\/promises|\.promises)?\./.test(name) &&
      WRITE_FNS.has(name.split(".").pop()!)
    ) {
      const path = str(args[0]);
      const opensForWrite = !name.endsWith("open") && !name.endsWith("openSync");
      const flags = str(args[1]) ?? "";
      if (
        path?.startsWith("/") &&
        (opensForWrite || /[wa+]/.test(flags)) &&
        !SAFE_ROOTS.some((r) => path === r || path.startsWith(`${r}/`))
      )
        add(
          "file-write-outside-workspace",
          "high",
          `${name}() writes ${path}, outside /workspace`,
          node,
        );
    }
  }
  return findings;
}

export interface JavaScriptAnalysisOptions {
  /** Largest unit analysed (bytes); a larger one is an `analysis-failed` finding. @default 1 MiB */
  maxUnitBytes?: number;
  /** Most bytes analysed over all units; the units past it are `analysis-failed`. @default 4 MiB */
  maxTotalBytes?: number;
}

const failed = (unit: SourceUnit, message: string): Finding => ({
  ruleId: "analysis-failed",
  severity: "high",
  message,
  line: 1,
  column: 1,
  cell: unit.cell,
});

/**
 * Findings for each unit; never throws on hostile input. Analysis runs in
 * Warden's own process (on the event loop), so its input is capped: what is
 * past a cap is reported as not analysed (high, so block mode fails closed)
 * rather than parsed.
 */
export function analyseJavaScript(
  units: SourceUnit[],
  o: JavaScriptAnalysisOptions = {},
): { findings: Finding[]; complete: boolean } {
  const maxUnit = o.maxUnitBytes ?? 1 << 20;
  const maxTotal = o.maxTotalBytes ?? 4 << 20;
  let total = 0;
  const all: Finding[] = [];
  for (const unit of units) {
    const size = Buffer.byteLength(unit.source);
    total += size;
    if (size > maxUnit)
      all.push(failed(unit, `${size} bytes: too large to analyse (at most ${maxUnit} per unit)`));
    else if (total > maxTotal)
      all.push(failed(unit, `not analysed: the code exceeds ${maxTotal} bytes analysed in all`));
    else
      try {
        all.push(...analyseUnit(unit));
      } catch (error) {
        // A bug or a limit the walk did not foresee costs this unit its analysis, never a 500.
        all.push(failed(unit, `could not be analysed (${(error as Error).name})`));
      }
  }
  // High findings survive the cap first: many low ones must not crowd out what block mode needs.
  const rank = (f: Finding): number => (f.severity === "high" ? 0 : 1);
  const findings = sortFindings([...all].sort((a, b) => rank(a) - rank(b)).slice(0, MAX_FINDINGS));
  return { findings, complete: !findings.some((f) => f.ruleId === "analysis-failed") };
}
