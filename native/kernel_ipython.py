"""The IPython engine: cells run through IPython's InteractiveShell, so
display(), magics, `!cmd`, top-level await and tracebacks are Jupyter's own.

Only where results go is Warden's: display data and the display hook's
result land in the sink (not printed), and tracebacks land in the cell's
error (IPython's names: `Cell In[N], line L`, its frames and the kernel's
left out by IPython itself). Importing this fails when IPython is absent.
"""
import os
import sys

# IPython keeps a profile directory; it must not land in the user's workspace.
os.environ.setdefault("IPYTHONDIR", "/tmp/.warden-ipython")

from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

import kernel_common as common  # noqa: E402

SINK = common.Sink()


class Publisher(DisplayPublisher):
    """display() and friends: a rich result, in order."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        SINK.display(data, metadata)

    def clear_output(self, wait=False):
        pass


class Hook(DisplayHook):
    """The last expression's value: the main result, kept for the end of the cell."""

    def start_displayhook(self):
        pass

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        SINK.display(format_dict, md_dict, main=True)

    def finish_displayhook(self):
        pass


class Engine:
    def __init__(self, main):
        self.sink = SINK
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        config.InteractiveShell.colors = "NoColor"
        config.InteractiveShell.autocall = 0
        self.shell = InteractiveShell.instance(
            config=config,
            user_module=main,
            displayhook_class=Hook,
            display_pub_class=Publisher,
        )
        self.traceback = None
        self.shell._showtraceback = self.keep_traceback
        # The display objects as builtins too, as the built-in engine has them.
        import IPython.display as d

        for name in ("HTML", "Markdown", "Latex", "SVG", "Javascript", "JSON", "Image"):
            self.shell.user_ns.setdefault(name, getattr(d, name))

    def keep_traceback(self, etype, evalue, stb):
        self.traceback = "\n".join(stb)

    def run(self, code):
        self.traceback = None
        result = self.shell.run_cell(code, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if error is None:
            return None
        # A UsageError (an unknown magic) is shown on stderr by IPython, with no traceback.
        return common.error_of(error, self.traceback or "")
