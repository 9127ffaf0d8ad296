# Classic daemonisation: fork, setsid, fork again, detach; the parent exits at once.
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        while True:
            time.sleep(1)
    os._exit(0)
print("parent leaving", flush=True)
sys.exit(0)
