"""warden static analyser for Python: policy and insight, never the boundary.

Runs INSIDE a sandbox (one-shot, tight memory and time limits), never in
Warden's host process: a file crafted to crash or hang the parser only costs
this sandbox. Reads {"cells": [{"cell": index|null, "source": "...", "kind":
"cell"|"program"|"file"}]} as JSON on stdin and prints {"findings": [...],
"errors": [...]} as one JSON line.

With `--serve` it stays up (Warden's warm analyser, src/policy/warm-analyser.ts):
it prints {"ready": true}, then for each request — a line holding the byte
length, then that many bytes of the same JSON — prints one answer line, in
order, one request at a time. Answers are ASCII JSON (no raw newline can end
one early); the host bounds and schema-checks them all the same.

In notebook cells (kind "cell") only, IPython lines (`!cmd`, `%magic`, `%%cell
magic`) are reported, then blanked so the rest of the cell still parses with its
line numbers intact. Which lines count is decided exactly as the notebook
runner (src/notebooks/runner.ts) decides which lines it takes out of Python:
what Python runs is what is analysed.
"""
import ast
import json
import re
import sys

MAX_FINDINGS = 500
SHELL_MAGICS = {"system", "sx", "bash", "sh", "script", "python", "python3", "perl", "ruby"}
PROCESS_CALLS = {
    "os.system", "os.popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.posix_spawnp",
    "pty.spawn", "pty.fork", "commands.getoutput", "commands.getstatusoutput",
}
PROCESS_PREFIXES = ("subprocess.", "os.exec", "os.spawn", "asyncio.create_subprocess")
DECODERS = {
    "base64.b64decode", "base64.b32decode", "base64.b16decode", "base64.a85decode",
    "base64.b85decode", "base64.decodebytes", "base64.urlsafe_b64decode", "binascii.unhexlify",
    "binascii.a2b_hex", "binascii.a2b_base64", "codecs.decode", "bytes.fromhex",
    "bytearray.fromhex", "zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress",
}
DESERIALIZERS = {"pickle.loads", "pickle.load", "cPickle.loads", "cPickle.load", "marshal.loads",
                 "marshal.load", "dill.loads", "dill.load", "shelve.open", "pickle.Unpickler"}
NETWORK_MODULES = {"socket", "urllib", "urllib2", "urllib3", "requests", "http", "httpx",
                   "aiohttp", "ftplib", "smtplib", "telnetlib", "websocket", "websockets", "paramiko"}
NATIVE_MODULES = {"ctypes", "cffi", "_ctypes"}
PROCESS_MODULES = {"subprocess", "pty", "multiprocessing"}
DUNDER_WALK = {"__subclasses__", "__globals__", "__builtins__", "__bases__", "__base__", "__mro__",
               "__code__", "__closure__", "__getattribute__", "__reduce__", "__reduce_ex__",
               "__loader__", "__spec__"}
SAFE_WRITE_ROOTS = ("/workspace", "/tmp")
# Calls that return a module: `__import__("os").system` is `os.system`.
IMPORTERS = {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}


class Analyser:
    def __init__(self, cell):
        self.cell = cell
        self.findings = []
        self.high = 0
        self.aliases = {}  # local name -> dotted origin ("sp" -> "subprocess", "system" -> "os.system")
        self.decoded = set()  # names assigned from a decoder call

    def add(self, rule, severity, message, node=None, line=None, col=0):
        # Past the cap only high findings are kept: a flood of low ones must not
        # hide the one that block mode refuses.
        if len(self.findings) >= MAX_FINDINGS and (severity != "high" or self.high >= MAX_FINDINGS):
            return
        self.high += severity == "high"
        self.findings.append({
            "ruleId": rule, "severity": severity, "message": message,
            "line": line if line is not None else getattr(node, "lineno", 1),
            "column": (getattr(node, "col_offset", col) if node is not None else col) + 1,
            "cell": self.cell,
        })

    def dotted(self, node, calls=True):
        """`a.b.c` as a dotted name with the first part resolved through imports, else None.

        With `calls`, a root that imports a literal module name counts as that
        module: `__import__("os").system` and `importlib.import_module("os").system`
        are `os.system`, so the rules for `os.system` apply to them.
        """
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(self.aliases.get(node.id, node.id))
        else:
            module = self.imported(node) if calls else None
            if module is None:
                return None
            parts.append(module)
        return ".".join(reversed(parts))

    def imported(self, node):
        """The module a call like `__import__("m")` returns when m is a literal, else None."""
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            return None
        fn = self.dotted(node.func, calls=False)  # not recursive: nested calls cost nothing
        if fn not in IMPORTERS:
            return None
        module = node.args[0].value
        # __import__("os.path") returns the top package `os` (unless given a fromlist).
        if fn != "importlib.import_module" and len(node.args) < 4 and not node.keywords:
            module = module.split(".")[0]
        return module or None

    def is_decoder_call(self, node):
        if isinstance(node, ast.Call):
            name = self.dotted(node.func) or ""
            if name in DECODERS or name.endswith(".fromhex") or name.endswith("b64decode"):
                return True
            # "...".decode("hex"/"base64"/"rot13") style, and s.decode() of a decoded value
            if isinstance(node.func, ast.Attribute) and node.func.attr == "decode":
                return self.is_decoder_call(node.func.value) or self.mentions_decoded(node.func.value)
        return False

    def mentions_decoded(self, node):
        for sub in ast.walk(node):
            if self.is_decoder_call(sub) or (isinstance(sub, ast.Name) and sub.id in self.decoded):
                return True
        return False

    def imports(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    self.check_module(a.name, node)
            elif isinstance(node, ast.ImportFrom) and node.module:
                self.check_module(node.module, node)
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Assign) and self.is_decoder_call(node.value):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.decoded.add(t.id)

    def check_module(self, module, node):
        root = module.split(".")[0]
        if root in NATIVE_MODULES:
            self.add("native-code", "high", f"imports {module}: calls into native code", node)
        elif root in PROCESS_MODULES:
            self.add("process-import", "medium", f"imports {module}: can start processes", node)
        elif root in NETWORK_MODULES:
            self.add("network", "medium", f"imports {module}: opens network connections", node)
        elif root in ("pickle", "marshal", "dill", "shelve", "cPickle"):
            self.add("deserialization-import", "low", f"imports {module}", node)

    def call(self, node):
        name = self.dotted(node.func) or ""
        bare = node.func.id if isinstance(node.func, ast.Name) else None
        if name in PROCESS_CALLS or name.startswith(PROCESS_PREFIXES):
            self.add("process-exec", "high", f"{name}(): runs another program", node)
        elif name in ("eval", "exec", "compile", "builtins.eval", "builtins.exec") or bare in ("eval", "exec", "compile"):
            fn = name or bare
            if any(self.mentions_decoded(a) for a in node.args):
                self.add("obfuscated-exec", "high", f"{fn}() of decoded (base64/hex/codec) data: hidden code", node)
            else:
                self.add("dynamic-exec", "high", f"{fn}(): runs code built at run time", node)
        elif name in IMPORTERS:
            module = self.imported(node)
            if module:
                self.check_module(module, node)
            self.add("dynamic-import", "medium", f"{name}(): imports a module chosen at run time", node)
        elif name in DESERIALIZERS:
            self.add("unsafe-deserialization", "high", f"{name}(): unpickling runs code from the data", node)
        elif name in ("socket.socket", "socket.create_connection", "socket.fromfd"):
            self.add("raw-socket", "high", f"{name}(): raw network socket", node)
        elif name in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            arg = node.args[1]
            if isinstance(arg, ast.Constant) and arg.value in DUNDER_WALK:
                self.add("introspection-escape", "high", f"getattr(..., {arg.value!r}): walks to interpreter internals", node)
        elif name in ("open", "io.open", "builtins.open", "os.open"):
            self.file_write(node, name)
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes", "touch", "mkdir", "symlink_to"):
            target = node.func.value
            if isinstance(target, ast.Call) and self.dotted(target.func) in ("pathlib.Path", "Path", "pathlib.PurePath") and target.args:
                self.outside(target.args[0], node, f"Path.{node.func.attr}()")

    def file_write(self, node, name):
        if not node.args:
            return
        mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg in ("mode", "flags")), None)
        if name == "os.open":
            writes = mode is not None and "O_WRONLY" in ast.dump(mode) or mode is not None and "O_RDWR" in ast.dump(mode)
        else:
            writes = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")
        if writes:
            self.outside(node.args[0], node, f"{name}()")

    def outside(self, path_node, node, what):
        if isinstance(path_node, ast.Constant) and isinstance(path_node.value, str):
            path = path_node.value
            if path.startswith("/") and not any(path == r or path.startswith(r + "/") for r in SAFE_WRITE_ROOTS):
                self.add("file-write-outside-workspace", "high", f"{what} writes {path}, outside /workspace", node)
            elif ".." in path.split("/"):
                self.add("file-write-outside-workspace", "medium", f"{what} writes {path}, climbing out with ..", node)

    def run(self, tree):
        self.imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.Attribute) and node.attr in DUNDER_WALK:
                self.add("introspection-escape", "high", f".{node.attr}: walks to interpreter internals", node)
            elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__"):
                self.add("introspection-escape", "medium", f"{node.id}: reaches the interpreter's builtins", node)


CELL_MAGIC = re.compile(r"%%([A-Za-z0-9_]*)")
LINE_MAGIC = re.compile(r"%[ \t]*([A-Za-z0-9_]+)")
BLANK = re.compile(r"[ \t\r\f\v]*")


class LineScanner:
    """Brackets, strings and backslash continuations across lines, as the notebook runner tracks them.

    A line is a statement line (where `!cmd` or `%magic` may start) only outside
    all three: `x = (1\n%os.system("id"))` is Python (a modulo), not a magic,
    and must be analysed as the code Python will run. Mirrors `LineScanner` in
    src/notebooks/runner.ts; the two must agree, not be clever.
    """

    def __init__(self):
        self.depth = 0
        self.quote = None  # the open string's quote: ', ", ''' or """
        self.continued = False

    def statement_line(self):
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line):
        if line.endswith("\r"):
            line = line[:-1]
        i, n = 0, len(line)
        self.continued = False
        while i < n:
            c = line[i]
            if self.quote is not None:
                if c == "\\":
                    i += 2
                elif line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                else:
                    i += 1
                continue
            if c == "#":
                break
            if c in "'\"":
                self.quote = c * 3 if line.startswith(c * 3, i) else c
                i += len(self.quote)
                continue
            if c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(0, self.depth - 1)
            elif c == "\\" and i == n - 1:
                self.continued = True
            i += 1
        # A one-quote string goes on to the next line only after a backslash.
        if self.quote in ("'", '"') and not line.endswith("\\"):
            self.quote = None


def strip_ipython(source, analyser):
    """Reports IPython shell/magic lines and blanks them; a `%%` cell magic makes the whole cell non-Python.

    Returns (source or None, whether any line was blanked).
    """
    lines = source.split("\n")
    first = next((l for l in lines if not BLANK.fullmatch(l)), "")
    if first.startswith("%%"):
        name = CELL_MAGIC.match(first).group(1)
        shell = name in SHELL_MAGICS
        analyser.add("ipython-shell" if shell else "ipython-magic", "medium" if shell else "low",
                     f"%%{name}: {'the cell runs as a shell script' if shell else 'cell magic'}", line=lines.index(first) + 1)
        return None, True
    out, stripped = [], False
    scanner = LineScanner()
    for i, line in enumerate(lines):
        m = LINE_MAGIC.match(line) if scanner.statement_line() else None
        shell_line = scanner.statement_line() and line.startswith("!")
        if shell_line or m:
            name = m.group(1) if m else ""
            if shell_line or name in SHELL_MAGICS:
                analyser.add("ipython-shell", "medium", f"shell command: {line.strip()[:120]}", line=i + 1)
            else:
                analyser.add("ipython-magic", "low", f"IPython magic %{name}", line=i + 1)
            out.append("")
            stripped = True
        else:
            scanner.feed(line)
            out.append(line)
    return "\n".join(out), stripped


def analyse(request):
    findings, errors = [], []
    for item in request.get("cells", []):
        analyser = Analyser(item.get("cell"))
        kind = item.get("kind") or "file"
        stripped = False
        try:
            source = item.get("source", "")
            if kind == "cell":
                source, stripped = strip_ipython(source, analyser)
            if source is not None:
                analyser.run(ast.parse(source, "<cell>", "exec"))
        except SyntaxError as e:
            # Code that does not parse does not run, so a syntax error is low... unless
            # it may be a disagreement between this parse and what runs: lines set aside
            # as IPython, or the program itself. Block mode must not wave those through.
            if stripped:
                severity, why = "high", f"does not parse once its IPython lines are set aside: {e.msg}"
            elif kind == "program":
                severity, why = "high", f"does not parse, so it could not be checked: {e.msg}"
            else:
                severity, why = "low", f"does not parse: {e.msg}"
            analyser.add("syntax-error", severity, why, line=e.lineno or 1, col=max((e.offset or 1) - 1, 0))
        except (RecursionError, MemoryError) as e:
            errors.append({"cell": item.get("cell"), "message": f"too deeply nested or too large to analyse ({type(e).__name__})"})
        findings.extend(analyser.findings)
        if len(findings) > MAX_FINDINGS:
            # Every cell is analysed whatever came before; high findings go first into the cap.
            findings.sort(key=lambda f: f["severity"] != "high")
            del findings[MAX_FINDINGS:]
    return {"findings": findings[:MAX_FINDINGS], "errors": errors}


def answer(report):
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def serve():
    """One request at a time until stdin closes; any framing error ends the process (the host restarts it)."""
    stdin = sys.stdin.buffer
    answer({"ready": True})
    while True:
        header = stdin.readline(32)
        if not header:
            return
        size = int(header)
        body = stdin.read(size)
        if len(body) != size:
            return
        answer(analyse(json.loads(body)))


if sys.argv[1:] == ["--serve"]:
    serve()
else:
    answer(analyse(json.load(sys.stdin)))
