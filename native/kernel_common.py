"""What both Python engines share: the ordered list of a cell's rich results
(the sink), MIME bundles, matplotlib figures, and the user's traceback.

Nothing here is trusted by Warden: the agent and the host bound every result.
"""
import base64
import importlib.abc
import importlib.util
import io
import json
import os
import re
import sys
import traceback

LIB = os.path.dirname(os.path.abspath(__file__)) + os.sep
RESULT_CHARS = 4 * 1024 * 1024
CELL_CHARS = 16 * 1024 * 1024
# A MIME type as Jupyter writes them; others are dropped (the host checks the same shape).
MIME = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,63}$")
BINARY = ("image/png", "image/jpeg", "image/gif")
# Rich reprs the built-in formatter asks for, in IPython's order.
REPRS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
)


def safe_str(value, fn=str):
    try:
        return fn(value)
    except Exception as e:  # a hostile or broken __str__/__repr__
        return "<%s: %s failed: %s>" % (type(value).__name__, fn.__name__, type(e).__name__)


def clean_value(mime, value):
    if isinstance(value, (bytes, bytearray)):
        if mime in BINARY:
            return base64.b64encode(bytes(value)).decode()
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            pass
    return safe_str(value)


def clean(data):
    """A MIME bundle as {type: str}: known shapes only, binary as base64."""
    out = {}
    if not isinstance(data, dict):
        return {"text/plain": safe_str(data)}
    for mime, value in data.items():
        if isinstance(mime, str) and MIME.match(mime) and value is not None:
            out[mime] = clean_value(mime, value)
    return out


def clean_metadata(metadata):
    if not isinstance(metadata, dict) or not metadata:
        return None
    try:
        return json.loads(json.dumps({str(k): v for k, v in metadata.items()}))
    except (TypeError, ValueError):
        return None


def bundle(value):
    """The MIME bundle of a value without IPython: _repr_mimebundle_, then _repr_*_."""
    data, metadata = {}, {}
    if not isinstance(value, type):
        fn = getattr(value, "_repr_mimebundle_", None)
        if callable(fn):
            try:
                got = fn(include=None, exclude=None)
                if isinstance(got, tuple) and len(got) == 2:
                    got, md = got
                    metadata.update(md if isinstance(md, dict) else {})
                if isinstance(got, dict):
                    data.update(got)
            except Exception:
                pass
        for method, mime in REPRS:
            fn = getattr(value, method, None)
            if mime in data or not callable(fn):
                continue
            try:
                got = fn()
            except Exception:
                continue
            if isinstance(got, tuple) and len(got) == 2:
                got, md = got
                if isinstance(md, dict):
                    metadata[mime] = md
            if got is not None:
                data[mime] = got
    if "text/plain" not in data:
        data["text/plain"] = safe_str(value, repr)
    return clean(data), metadata


class Sink:
    """A cell's rich results, in the order they were made; the main result last."""

    running = False

    def begin(self):
        self.results = []
        self.main = None
        self.size = 0

    def display(self, data, metadata=None, main=False):
        data = clean(data)
        # The agent's bounds (4 MiB a result, 16 MiB a cell), kept here so the answer line stays small.
        size = sum(len(v) for v in data.values())
        if size > RESULT_CHARS or self.size + size > CELL_CHARS:
            data = {"text/plain": "<result too large: %d characters (at most %d each, %d per cell)>" % (size, RESULT_CHARS, CELL_CHARS)}
            size = 0
        self.size += size
        result = {"data": data, "isMainResult": main}
        md = clean_metadata(metadata)
        if md:
            result["metadata"] = md
        if main:
            self.main = result
        elif len(self.results) < 64:  # the agent keeps 32; the rest would only cost memory
            self.results.append(result)

    def display_value(self, value, main=False):
        data, metadata = bundle(value)
        self.display(data, metadata, main)

    def figures(self):
        """Open matplotlib figures as image/png results (inline, as Jupyter shows them)."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        for num in plt.get_fignums():
            fig = plt.figure(num)
            buf = io.BytesIO()
            try:
                fig.savefig(buf, format="png")
            except Exception as e:
                sys.stderr.write("figure %s could not be drawn: %s\n" % (num, safe_str(e)))
                continue
            self.display({"image/png": buf.getvalue(), "text/plain": safe_str(fig, repr)})
        plt.close("all")

    def end(self):
        return self.results + ([self.main] if self.main else [])


class _PyplotHook(importlib.abc.MetaPathFinder):
    """Makes plt.show() show the figures inline, at that point of the cell,
    instead of Agg's "cannot show the figure" warning. MPLBACKEND stays Agg
    for commands, so a script run by `!python x.py` still works."""

    def __init__(self, sink):
        self.sink = sink

    def find_spec(self, name, path, target=None):
        if name != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module
        sink = self.sink

        def exec_module(module):
            run(module)
            module.show = lambda *args, **kwargs: sink.figures()

        loader.exec_module = exec_module
        return spec


def install_pyplot_hook(sink):
    if "matplotlib.pyplot" not in sys.modules:
        sys.meta_path.insert(0, _PyplotHook(sink))


def user_traceback(e):
    """The traceback of the user's cells only: this kernel's frames (and
    asyncio's, for an awaited cell) are Warden's, not the user's."""
    tb = e.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell "):
        tb = tb.tb_next
    try:
        te = traceback.TracebackException(type(e), e, tb)
        # A magic's own frames (kernel_builtin.py) are Warden's too.
        te.stack = traceback.StackSummary.from_list([f for f in te.stack if not f.filename.startswith(LIB)])
        return "".join(te.format())
    except Exception:
        return safe_str(e)


def error_of(e, tb_text=None):
    return {
        "name": type(e).__name__,
        "value": safe_str(e),
        "traceback": user_traceback(e) if tb_text is None else tb_text,
    }
