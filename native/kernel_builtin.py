"""The built-in Python engine, for a python without IPython.

Cells are Python plus the IPython lines people use most: `!cmd`, `x = !cmd`,
`%pip`, `%time`, `%cd`, `%pwd`, `%env`, and the cell magics `%%bash`/`%%sh`,
`%%time`, `%%writefile`. Top-level `await` works (one event loop for the
context). display() and the display objects are builtins (kernel_display.py).
Cells are named `<cell N>` in tracebacks.
"""
import ast
import asyncio
import builtins
import importlib
import inspect
import linecache
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import kernel_common as common
import kernel_display

# A shell escape or a line magic at the start of a line (IPython's syntax).
SHELL = re.compile(r"^([ \t]*)!(.*)$")
ASSIGN_SHELL = re.compile(r"^([ \t]*)([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*!(.*)$")
LINE_MAGIC = re.compile(r"^([ \t]*)%[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*(.*)$")
CELL_MAGIC = re.compile(r"^%%([A-Za-z_][A-Za-z0-9_]*)[ \t]*(.*)$")
AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


class UsageError(Exception):
    """A magic used wrongly (IPython's name for it)."""


def shell_run(argv, stdin_text=None, capture=False):
    """A command in its own process group, its output streamed to the cell
    (or captured); an interrupt stops the whole group, then the cell."""
    sys.stdout.flush()
    sys.stderr.flush()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(stdin_text.encode() if stdin_text is not None else None)
    except KeyboardInterrupt:
        for sig, wait in ((signal.SIGINT, 1), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except (OSError, subprocess.TimeoutExpired):
                continue
        raise
    return out.decode("utf-8", "replace") if capture else proc.returncode


def shell_line(command, capture=False):
    out = shell_run(["/bin/bash", "-c", command], capture=capture)
    return out.splitlines() if capture else None


class Engine:
    def __init__(self, main):
        self.ns = main.__dict__
        self.sink = common.Sink()
        self.cells = 0
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        kernel_display.install(self.sink)
        builtins.__warden_shell__ = shell_line
        builtins.__warden_magic__ = self.line_magic

    # -- code -------------------------------------------------------------

    def run(self, code):
        self.cells += 1
        name = "<cell %d>" % self.cells
        try:
            first = code.lstrip("\n").split("\n", 1)
            magic = CELL_MAGIC.match(first[0])
            if magic:
                self.cell_magic(magic.group(1), magic.group(2), first[1] if len(first) > 1 else "", name)
            else:
                self.python(code, name, main=True)
        except UsageError as e:  # as IPython: a message on stderr, no traceback
            print("UsageError: %s" % e, file=sys.stderr)
            return common.error_of(e, "")
        except BaseException as e:  # errors, KeyboardInterrupt (a timeout), SystemExit
            return common.error_of(e)
        return None

    def python(self, code, name, main):
        code = transform(code)
        # Lets tracebacks quote the cell's lines, as they would a file's.
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        tree = ast.parse(code, name, "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        self.execute(compile(tree, name, "exec", flags=AWAIT))
        if last is not None:
            value = self.execute(compile(ast.Expression(last.value), name, "eval", flags=AWAIT))
            if value is not None:
                self.ns["_"] = value
                if main:
                    self.sink.display_value(value, main=True)
                else:
                    return value
        return None

    def execute(self, code):
        """Runs compiled code; a cell with top-level await runs on the context's loop."""
        result = eval(code, self.ns)
        if code.co_flags & inspect.CO_COROUTINE:
            result = self.loop.run_until_complete(result)
        return result

    # -- magics -----------------------------------------------------------

    def line_magic(self, name, args):
        if name == "pip":
            code = shell_run([sys.executable, "-m", "pip"] + shlex.split(args))
            importlib.invalidate_caches()
            if code:
                print("pip exited with status %d" % code, file=sys.stderr)
            return None
        if name == "time":
            return self.timed(lambda: self.python(args, "<cell %d:time>" % self.cells, main=False))
        if name == "cd":
            os.chdir(os.path.expanduser(args.strip() or "~"))
            print(os.getcwd())
            return None
        if name == "pwd":
            return os.getcwd()
        if name == "env":
            if "=" in args:
                key, _, value = args.partition("=")
                os.environ[key.strip()] = value.strip()
                return None
            return os.environ.get(args.strip()) if args.strip() else dict(os.environ)
        if name in ("matplotlib", "load_ext", "config"):
            return None  # figures are always inline; extensions need IPython
        raise UsageError("Line magic function `%%%s` not found (Warden's built-in kernel: no IPython here)." % name)

    def cell_magic(self, name, args, body, cell_name):
        if name in ("bash", "sh"):
            shell_run(["/bin/bash"] if name == "bash" else ["/bin/sh"], stdin_text=body)
        elif name == "time":
            self.timed(lambda: self.python(body, cell_name, main=True))
        elif name == "writefile":
            path = os.path.expanduser(args.strip())
            if not path:
                raise UsageError("%%writefile: a file name is needed")
            print(("Overwriting %s" if os.path.exists(path) else "Writing %s") % path)
            with open(path, "w") as f:
                f.write(body)
        else:
            raise UsageError("Cell magic `%%%%%s` not found (Warden's built-in kernel: no IPython here)." % name)

    def timed(self, run):
        cpu, wall = os.times(), time.perf_counter()
        try:
            return run()
        finally:
            end = os.times()
            user, system = end.user - cpu.user, end.system - cpu.system
            print("CPU times: user %.3g s, sys: %.3g s, total: %.3g s" % (user, system, user + system))
            print("Wall time: %.3g s" % (time.perf_counter() - wall))


def transform(code):
    """IPython lines into calls. Only a cell that is not Python as it stands
    is transformed, and only at lines that start a statement (a `%` or `!`
    inside brackets or a string is Python's own)."""
    try:
        ast.parse(code)
        return code
    except SyntaxError:
        pass
    out, depth, quote, continued = [], 0, None, False
    for line in code.split("\n"):
        if depth == 0 and quote is None and not continued:
            m = ASSIGN_SHELL.match(line)
            if m:
                out.append("%s%s = __warden_shell__(%r, capture=True)" % (m.group(1), m.group(2), m.group(3)))
                continue
            m = SHELL.match(line)
            if m:
                out.append("%s__warden_shell__(%r)" % (m.group(1), m.group(2)))
                continue
            m = LINE_MAGIC.match(line)
            if m:
                out.append("%s__warden_magic__(%r, %r)" % (m.group(1), m.group(2), m.group(3)))
                continue
        out.append(line)
        depth, quote, continued = scan(line, depth, quote)
    return "\n".join(out)


def scan(line, depth, quote):
    """Bracket depth and open string after a line (as src/notebooks/line-scanner.ts)."""
    i = 0
    while i < len(line):
        c = line[i]
        if quote is not None:
            if c == "\\":
                i += 2
            elif line.startswith(quote, i):
                i += len(quote)
                quote = None
            else:
                i += 1
            continue
        if c == "#":
            break
        if c in "'\"":
            quote = c * 3 if line.startswith(c * 3, i) else c
            i += len(quote)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    continued = line.endswith("\\")
    if quote in ("'", '"') and not continued:
        quote = None
    return depth, quote, continued
