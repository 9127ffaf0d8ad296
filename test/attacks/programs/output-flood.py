# Writes a gigabyte to stdout as fast as it can.
import sys
block = b"x" * (1024 * 1024)
for _ in range(1024):
    sys.stdout.buffer.write(block)
