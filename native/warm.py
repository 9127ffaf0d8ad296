# Warden's warm stub for Python. A pooled sandbox starts it exactly as it would
# start a program (python3 -u THIS_FILE), so the interpreter is up before any
# request arrives. It says it is ready on fd 4, waits for the run request on
# fd 3 (the bytes warden-init got: see src/sandbox/init-request.ts), then runs
# the requested file the way `python3 -u FILE ARGS...` would: as __main__,
# with sys.argv, __file__, sys.path[0], the environment and working directory
# of the request, and tracebacks that start in the user's file.
#
# warden-init has already lowered this process's rlimits to the request's.
# A request the warm interpreter cannot honour (another interpreter or flags,
# or a variable Python only reads at start-up) is exec'd cold instead.
import os
import sys


def _warden_request():
    os.write(4, b"r")
    os.close(4)
    chunks = []
    while True:
        chunk = os.read(3, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(3)
    fields = b"".join(chunks).split(b"\0")
    pos = 0

    def take():
        nonlocal pos
        pos += 1
        return fields[pos - 1]

    if take() != b"W1":
        os._exit(127)
    cwd = take()
    for _ in range(int(take())):
        take()
    argv = [take() for _ in range(int(take()))]
    env = {}
    for _ in range(int(take())):
        key, _, value = take().partition(b"=")
        env[key] = value
    return cwd, argv, env


# Variables the interpreter (or the C library under it) reads before any code runs.
_STARTUP = (b"PYTHON", b"LC_", b"LANG", b"LD_", b"MALLOC_", b"GLIBC_")


def _startup_env(env):
    return {k: v for k, v in env.items() if k.startswith(_STARTUP)}


def _warden_main():
    cwd, argv, env = _warden_request()
    prefix = [os.fsencode(a) for a in sys.orig_argv[:-1]]
    n = len(prefix)
    served = (
        argv[:n] == prefix
        and len(argv) > n
        and not argv[n].startswith(b"-")
        and _startup_env(env) == _startup_env(os.environb)
    )
    os.chdir(cwd)
    if not served:
        os.execve(argv[0], argv, env)
    os.environb.clear()
    os.environb.update(env)
    script = os.fsdecode(argv[n])
    path = os.path.abspath(script)
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        sys.stderr.write(f"{sys.executable}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}\n")
        sys.exit(2)
    sys.argv = [script] + [os.fsdecode(a) for a in argv[n + 1 :]]
    sys.orig_argv = [os.fsdecode(a) for a in argv]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    main = type(sys)("__main__")
    loader = sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", path)
    main.__dict__.update(
        __file__=path, __cached__=None, __loader__=loader, __spec__=None,
        __builtins__=sys.modules["builtins"],
    )
    sys.modules["__main__"] = main
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        sys.excepthook(type(e), e, None)
        sys.exit(1)
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        # This frame is Warden's, not the program's: the traceback starts below it.
        e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        if isinstance(e, KeyboardInterrupt):
            import signal
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        sys.exit(1)


_warden_main()
