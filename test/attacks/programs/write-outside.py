# Tries to write everywhere but /workspace and /tmp.
import json
results = {}
for path in ["/x", "/etc/passwd", "/etc/new", "/usr/bin/evil", "/usr/lib/x", "/.warden/init", "/proc/sys/kernel/hostname", "/dev/evil", "/workspace/ok", "/tmp/ok"]:
    try:
        with open(path, "w") as f:
            f.write("owned")
        results[path] = "written"
    except OSError as e:
        results[path] = type(e).__name__
print(json.dumps(results))
