# Who am I, and what may I do?
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "hostname=$(hostname)"
unshare -U true 2>/dev/null && echo "unshare: ALLOWED" || echo "unshare: refused"
su -c 'id -u' root </dev/null 2>/dev/null && echo "su: ALLOWED" || echo "su: refused"
