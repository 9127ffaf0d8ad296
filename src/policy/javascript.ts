/**
 * JavaScript analysis with acorn, in process. acorn is a pure parser (no code
 * runs), the input is bounded by the request limits, and a stack overflow on
 * deeply nested input is caught (RangeError) and reported, so parsing in
 * process is safe; the walk below is iterative for the same reason.
 */
import { parse, type Node, type Options } from "acorn";
import { sortFindings, type Finding, type Severity, type SourceUnit } from "./findings.js";

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
  const add = (ruleId: string, severity: Severity, message: string, node: AnyNode): void => {
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
  const nameOf = (n: AnyNode): string | null => {
    if (n.type === "Identifier") return origin.get(n.name as string) ?? (n.name as string);
    if (n.type === "MemberExpression" && !n.computed) {
      const base = nameOf(n.object as AnyNode);
      return base ? `${base}.${(n.property as AnyNode).name as string}` : null;
    }
    return null;
  };
  const decodes = (n: AnyNode): boolean => {
    for (const sub of nodes(n)) {
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
    if (findings.length >= MAX_FINDINGS) break;
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

/** Findings for each unit; never throws on hostile input. */
export function analyseJavaScript(units: SourceUnit[]): { findings: Finding[]; complete: boolean } {
  const findings = sortFindings(units.flatMap((unit) => analyseUnit(unit))).slice(0, MAX_FINDINGS);
  return { findings, complete: !findings.some((f) => f.ruleId === "analysis-failed") };
}
