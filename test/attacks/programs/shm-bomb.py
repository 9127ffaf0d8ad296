# Memory by another door: a RAM-backed file in /dev/shm.
with open("/dev/shm/hoard", "wb") as f:
    while True:
        f.write(b"\xff" * (4 * 1024 * 1024))
        f.flush()
