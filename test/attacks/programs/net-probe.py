# What network does this sandbox have? Reads the kernel's own tables (no packet
# leaves this way), tries the host's loopback port and a DNS lookup.
import json, socket, sys
port = int(sys.argv[1])
report = {}
with open("/proc/net/dev") as f:
    report["interfaces"] = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
with open("/proc/net/route") as f:
    report["ipv4_routes"] = [line.split()[0:3] for line in f.readlines()[1:]]
with open("/proc/net/ipv6_route") as f:
    report["ipv6_routes_off_lo"] = [l.split()[-1] for l in f if l.split()[-1] != "lo"]
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    report["host_loopback"] = "connected"
except OSError as e:
    report["host_loopback"] = type(e).__name__
try:
    socket.getaddrinfo("example.com", 443)
    report["dns"] = "resolved"
except OSError as e:
    report["dns"] = type(e).__name__
print(json.dumps(report))
