"""display() and IPython's display objects for the built-in engine.

They are builtins (display, HTML, Markdown, Image, JSON, SVG, Latex,
Javascript), and `from IPython.display import ...` finds them through a
finder placed LAST on sys.meta_path: it answers only when no real IPython
can be imported, so a later `%pip install ipython` is never shadowed.
"""
import builtins
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types

_sink = None


def display(*objs, raw=False, metadata=None, include=None, exclude=None, display_id=None, **kwargs):
    """Shows each object as a rich result, in order (IPython's display())."""
    for obj in objs:
        if raw and isinstance(obj, dict):
            _sink.display(obj, metadata)
        else:
            data, md = __import__("kernel_common").bundle(obj)
            if isinstance(metadata, dict):
                md.update(metadata)
            _sink.display(data, md)


def update_display(obj, *, display_id=None, **kwargs):
    display(obj, **kwargs)


def clear_output(wait=False):
    """Nothing to clear: a cell's results are sent when it ends."""


class DisplayObject:
    mime = "text/plain"

    def __init__(self, data=None, url=None, filename=None, metadata=None):
        if filename is not None:
            with open(filename, "rb" if self.binary() else "r") as f:
                data = f.read()
        self.data, self.url, self.metadata = data, url, metadata

    def binary(self):
        return False

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {self.mime: self.data, "text/plain": "<%s object>" % type(self).__name__}
        return (bundle, {self.mime: self.metadata}) if self.metadata else bundle


class HTML(DisplayObject):
    mime = "text/html"


class Markdown(DisplayObject):
    mime = "text/markdown"


class Latex(DisplayObject):
    mime = "text/latex"


class SVG(DisplayObject):
    mime = "image/svg+xml"


class Javascript(DisplayObject):
    mime = "application/javascript"


class JSON(DisplayObject):
    mime = "application/json"

    def __init__(self, data=None, url=None, filename=None, expanded=False, metadata=None, **kwargs):
        super().__init__(data, url, filename, metadata)
        if isinstance(self.data, str):
            self.data = json.loads(self.data)


class Image(DisplayObject):
    def __init__(self, data=None, url=None, filename=None, format=None, embed=None, width=None, height=None, metadata=None, **kwargs):
        if isinstance(data, str) and os.path.exists(data) and filename is None:
            data, filename = None, data
        name = (filename or url or "").lower()
        fmt = (format or ("jpeg" if name.endswith((".jpg", ".jpeg")) else "png")).lower()
        self.mime = "image/jpeg" if fmt in ("jpg", "jpeg") else "image/png"
        size = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
        super().__init__(data, url, filename, size or metadata)

    def binary(self):
        return True

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.data is None:  # a URL: nothing is fetched (no network), it is linked
            return {"text/html": '<img src="%s"/>' % self.url, "text/plain": "<Image %s>" % self.url}
        return super()._repr_mimebundle_(include, exclude)


NAMES = ("display", "update_display", "clear_output", "HTML", "Markdown", "Latex", "SVG", "Javascript", "JSON", "Image")


def _shim():
    display_mod = types.ModuleType("IPython.display")
    for name in NAMES + ("DisplayObject",):
        setattr(display_mod, name, globals()[name])
    package = types.ModuleType("IPython")
    package.__path__ = []
    package.__version__ = "0 (Warden built-in display shim, not IPython)"
    package.display = display_mod
    package.get_ipython = lambda: None  # what matplotlib and pandas ask: "not in IPython"
    return {"IPython": package, "IPython.display": display_mod}


class _ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name in ("IPython", "IPython.display"):
            return importlib.machinery.ModuleSpec(name, self, is_package=name == "IPython")
        return None

    def create_module(self, spec):
        return _shim()[spec.name] if spec.name == "IPython" else sys.modules["IPython"].display

    def exec_module(self, module):
        pass


def install(sink):
    global _sink
    _sink = sink
    for name in NAMES:
        setattr(builtins, name, globals()[name])
    sys.meta_path.append(_ShimFinder())
