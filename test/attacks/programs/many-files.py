# Exhausts inodes with empty files: they cost kernel memory but no bytes.
import os, sys
n = 0
try:
    while True:
        open(f"/workspace/f{n}", "w").close()
        n += 1
except OSError as e:
    print(f"stopped after {n} files: {e.strerror}", flush=True)
    sys.exit(1)
