# Fills /workspace, then /tmp, until the disk says no.
import sys
written = 0
for path in ("/workspace/fill", "/tmp/fill"):
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * (1024 * 1024))
                f.flush()
                written += 1
    except OSError as e:
        print(f"{path}: {e.strerror} after {written} MiB", flush=True)
sys.exit(1)
