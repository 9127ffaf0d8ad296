# Tries to read what belongs to the host and to Warden. Paths to try come as arguments.
import json, os, sys
results = {}
for path in ["/etc/shadow", "/root", "/home", "/sys/fs/cgroup", "/proc/1/root/etc/shadow"] + sys.argv[1:]:
    try:
        if os.path.isdir(path):
            results[path] = "listed: " + ",".join(os.listdir(path)[:5])
        else:
            with open(path, "rb") as f:
                results[path] = "read %d bytes" % len(f.read())
    except OSError as e:
        results[path] = type(e).__name__
with open("/proc/1/cmdline", "rb") as f:
    results["pid1"] = f.read().split(b"\0")[0].decode()
results["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
results["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
with open("/proc/self/cgroup") as f:
    results["cgroup"] = f.read().strip()
print(json.dumps(results))
