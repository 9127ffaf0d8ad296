// A JavaScript cell made runnable as a vm Script, as Node's REPL does it:
// - `import(x)` anywhere becomes `__warden_import(x)` (a vm Script has no
//   module loader of its own);
// - a cell with top-level `await` or `import` declarations runs inside an
//   async function, its top-level declarations hoisted out of it so that they
//   persist like any other cell's: `let`/`const`/`class` as `let`, `var` and
//   imports as `var` (a re-run import cell works), functions as `var`.
// Source positions stay put (only line 1 and the end gain text), so a
// traceback's line numbers are the cell's own. A cell acorn cannot parse is
// run as it is, and V8 reports its SyntaxError.
"use strict";
const acorn = require("acorn");

const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

/** Calls visit(node) for every node outside nested functions (`inside` says whether in one). */
function walk(node, visit, inside = false) {
  if (!node || typeof node.type !== "string") return;
  visit(node, inside);
  const nested = inside || FUNCTIONS.has(node.type);
  for (const key of Object.keys(node)) {
    const child = node[key];
    if (Array.isArray(child)) for (const c of child) walk(c, visit, nested);
    else if (child && typeof child.type === "string") walk(child, visit, nested);
  }
}

/** Names a declaration pattern binds (`{a, b: [c, ...d]} = ...` → a, c, d). */
function boundNames(pattern, out = []) {
  if (!pattern) return out;
  switch (pattern.type) {
    case "Identifier":
      out.push(pattern.name);
      break;
    case "ObjectPattern":
      for (const p of pattern.properties) boundNames(p.type === "RestElement" ? p.argument : p.value, out);
      break;
    case "ArrayPattern":
      for (const e of pattern.elements) boundNames(e, out);
      break;
    case "RestElement":
      boundNames(pattern.argument, out);
      break;
    case "AssignmentPattern":
      boundNames(pattern.left, out);
      break;
  }
  return out;
}

function parse(code) {
  try {
    return acorn.parse(code, {
      ecmaVersion: "latest",
      sourceType: "script",
      allowAwaitOutsideFunction: true,
      allowImportExportEverywhere: true,
      allowHashBang: true,
    });
  } catch {
    return null;
  }
}

/** `import a, {b as c} from "m"` as an assignment from the module's namespace. */
function importAssignment(node, src, names) {
  const from = `await __warden_import(${src.slice(node.source.start, node.source.end)})`;
  const parts = [];
  let namespace = null;
  for (const s of node.specifiers) {
    names.push(s.local.name);
    if (s.type === "ImportNamespaceSpecifier") namespace = s.local.name;
    else if (s.type === "ImportDefaultSpecifier") parts.push(`default: ${s.local.name}`);
    else {
      const imported = s.imported.type === "Literal" ? JSON.stringify(s.imported.value) : s.imported.name;
      parts.push(`${imported}: ${s.local.name}`);
    }
  }
  if (namespace) return `void (${namespace} = ${from});`;
  // Named imports from CommonJS also find what Node's lexer did not see as an export.
  return parts.length ? `void ({${parts.join(", ")}} = __warden_named(${from}));` : `void (${from});`;
}

function transformCell(code) {
  const ast = parse(code);
  if (!ast) return code;
  const edits = []; // [start, end, text], applied from the end
  let async = false;
  walk(ast, (node, inside) => {
    if (node.type === "ImportExpression") edits.push([node.start, node.source.start, "__warden_import("]);
    else if (!inside && (node.type === "AwaitExpression" || (node.type === "ForOfStatement" && node.await)))
      async = true;
  });
  if (ast.body.some((n) => n.type === "ImportDeclaration")) async = true;
  if (!async) return apply(code, edits);
  const lets = [];
  const vars = [];
  for (const node of ast.body) {
    if (node.type === "ImportDeclaration") {
      edits.push([node.start, node.end, importAssignment(node, code, vars)]);
    } else if (node.type === "VariableDeclaration") {
      const names = node.declarations.flatMap((d) => boundNames(d.id));
      (node.kind === "var" ? vars : lets).push(...names);
      const assigned = node.declarations.filter((d) => d.init || node.kind !== "var");
      const text = assigned
        .map((d) => `${code.slice(d.id.start, d.id.end)} = ${d.init ? code.slice(d.init.start, d.init.end) : "undefined"}`)
        .join(", ");
      // Inner edits (import() in an initialiser) are inside this range: this one replaces them.
      for (let i = edits.length - 1; i >= 0; i--)
        if (edits[i][0] >= node.start && edits[i][1] <= node.end) edits.splice(i, 1);
      edits.push([node.start, node.end, text ? `void (${rewrite(code, node.start, text)});` : ";"]);
    } else if (node.type === "FunctionDeclaration") {
      vars.push(node.id.name);
      edits.push([node.start, node.start, `${node.id.name} = `], [node.end, node.end, ";"]);
    } else if (node.type === "ClassDeclaration") {
      lets.push(node.id.name);
      edits.push([node.start, node.start, `${node.id.name} = `], [node.end, node.end, ";"]);
    }
  }
  const last = ast.body[ast.body.length - 1];
  if (last && last.type === "ExpressionStatement") {
    edits.push([last.start, last.start, "return ("]);
    edits.push([last.expression.end, last.expression.end, ")"]);
  }
  const head =
    (lets.length ? `let ${[...new Set(lets)].join(", ")}; ` : "") +
    (vars.length ? `var ${[...new Set(vars)].join(", ")}; ` : "") +
    "(async () => { ";
  return `${head}${apply(code, edits)}\n})()`;
}

/** import() inside a declaration's text (which replaces the declaration whole). */
function rewrite(code, offset, text) {
  const inner = parse(`(${text})`);
  if (!inner) return text;
  const edits = [];
  walk(inner, (node) => {
    if (node.type === "ImportExpression") edits.push([node.start - 1, node.source.start - 1, "__warden_import("]);
  });
  return apply(text, edits);
}

function apply(code, edits) {
  let out = code;
  for (const [start, end, text] of edits.sort((a, b) => b[0] - a[0] || b[1] - a[1]))
    out = out.slice(0, start) + text + out.slice(end);
  return out;
}

module.exports = { transformCell };
