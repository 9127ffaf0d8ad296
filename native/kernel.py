"""warden python kernel: a persistent code context inside a session's sandbox.

Started by the session agent. Requests arrive on fd 3 as JSON lines
({"id", "code"}); the answer for each is one JSON line on fd 3:
{"id", "type": "result", "results": [MIME bundles], "error": null | {name, value, traceback}}.
The cell's own output goes to fd 1 and 2 as usual (the agent streams it).
The last expression's value is the main result; matplotlib figures come
back as image/png bundles.
"""
import ast
import base64
import io
import json
import linecache
import os
import sys
import traceback

channel_in = os.fdopen(3, "r", buffering=1)
channel_out = os.fdopen(os.dup(3), "w", buffering=1)
namespace = {"__name__": "__main__", "__builtins__": __builtins__}


def bundle(value):
    data = {"text/plain": repr(value)}
    for method, mime in (("_repr_html_", "text/html"), ("_repr_svg_", "image/svg+xml"), ("_repr_json_", "application/json")):
        fn = getattr(value, method, None)
        if callable(fn):
            try:
                out = fn()
                if out is not None:
                    data[mime] = out if isinstance(out, str) else json.dumps(out)
            except Exception:
                pass
    fn = getattr(value, "_repr_png_", None)
    if callable(fn):
        try:
            png = fn()
            if png:
                data["image/png"] = base64.b64encode(png).decode()
        except Exception:
            pass
    return data


def figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    found = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png")
        found.append({"data": {"image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": "<Figure>"}, "isMainResult": False})
    plt.close("all")
    return found


def user_traceback(e):
    """The traceback of the user's code only: this kernel's own frames (the
    exec of the cell) are Warden's, not the user's, and stay out of it."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def remember(name, code):
    """Lets tracebacks quote the cell's source lines, as they would a file's."""
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)


cells = 0
for line in channel_in:
    try:
        request = json.loads(line)
    except ValueError:
        continue
    results, error = [], None
    sys.stdin = io.StringIO("")
    cells += 1
    name = "<cell %d>" % cells
    code = request.get("code", "")
    code = code if isinstance(code, str) else ""
    remember(name, code)
    try:
        tree = ast.parse(code, name, "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, name, "exec"), namespace)
        value = None
        if last is not None:
            value = eval(compile(ast.Expression(last.value), name, "eval"), namespace)
        results.extend(figures())
        if value is not None:
            results.append({"data": bundle(value), "isMainResult": True})
    except BaseException as e:  # KeyboardInterrupt (a timeout), SystemExit, errors
        error = {"name": type(e).__name__, "value": str(e), "traceback": user_traceback(e)}
    sys.stdout.flush()
    sys.stderr.flush()
    channel_out.write(json.dumps({"id": request.get("id"), "type": "result", "results": results, "error": error}) + "\n")
