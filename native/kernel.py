"""warden python kernel: a persistent code context inside a session's sandbox.

Started by the session agent. Requests arrive on fd 3 as JSON lines
({"id", "code", "env"?}); the answer for each is one JSON line on fd 3:
{"id", "type": "result", "results": [{data, metadata?, isMainResult}], "error"}.
The cell's own output goes to fd 1 and 2 as usual (the agent streams it).

Cells run through IPython's InteractiveShell when IPython is importable
(kernel_ipython.py: Jupyter's own semantics), else through the built-in
engine (kernel_builtin.py: display(), display objects, magics, top-level
await). WARDEN_PYTHON_KERNEL=builtin, set by Warden (never by a request),
forces the built-in one. Results come in order: display() calls and shown
figures, then figures left open, then the last expression (the main result).
Everything this kernel writes is checked and bounded by the host.
"""
import base64
import io
import json
import os
import signal
import sys
import types

LIB = os.path.dirname(os.path.abspath(__file__))
# sys.path[0] is this directory while the kernel's own modules (and IPython)
# are imported; then the working directory, as in Jupyter (further down).
sys.path[0] = LIB
import kernel_common as common  # noqa: E402

# Held on private descriptors (not inherited): code in a cell, and what it
# starts, do not find the channel on fd 3.
channel_in = os.fdopen(os.dup(3), "r", buffering=1)
channel_out = os.fdopen(os.dup(3), "w", buffering=1, encoding="utf-8", errors="replace")
os.close(3)

# The user's namespace is a real __main__ module (pickle and multiprocessing need one).
main = types.ModuleType("__main__")
main.__dict__["__builtins__"] = __builtins__
sys.modules["__main__"] = main

engine = None
if os.environ.pop("WARDEN_PYTHON_KERNEL", "auto") != "builtin":
    try:
        import kernel_ipython

        engine = kernel_ipython.Engine(main)
    except ImportError:
        engine = None
if engine is None:
    import kernel_builtin

    engine = kernel_builtin.Engine(main)
common.install_pyplot_hook(engine.sink)
# A /workspace/kernel_builtin.py (or IPython/) cannot stand in for Warden's: all imported above.
sys.path[0] = ""
sys.path.append(LIB)


def interrupt(signum, frame):
    # The agent interrupts a cell past its timeout; between cells SIGINT must
    # not end the kernel (a late signal would lose the whole context).
    if engine.sink.running:
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, interrupt)


def set_env(env):
    """A cell's own environment variables (E2B's env_vars): set for this cell,
    then put back as they were (restore_env), so they do not leak into the next."""
    saved = {}
    if not isinstance(env, dict):
        return saved
    for key, value in env.items():
        if isinstance(key, str) and isinstance(value, str) and key and "=" not in key and "\0" not in key + value:
            saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value
    return saved


def restore_env(saved):
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

for line in channel_in:
    try:
        request = json.loads(line)
    except ValueError:
        continue
    if not isinstance(request, dict):
        continue
    code = request.get("code", "")
    code = code if isinstance(code, str) else ""
    sys.stdin = io.StringIO("")
    sink = engine.sink
    sink.begin()
    error = None
    saved_env = set_env(request.get("env"))
    try:
        sink.running = True
        error = engine.run(code)
        sink.running = False
        sink.figures()
    except BaseException as e:  # an interrupt between the user's code and here
        sink.running = False
        error = error or common.error_of(e, "")
    restore_env(saved_env)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    answer = {"id": request.get("id"), "nonce": request.get("nonce"), "type": "result", "results": sink.end(), "error": error}
    channel_out.write(json.dumps(answer, ensure_ascii=False) + "\n")
