#!/usr/bin/env bash
# Sets Warden up on a Debian (12+) or Ubuntu machine, as root:
#   Debian packages (bubblewrap, the compiler and libseccomp for the native
#   helpers), npm packages, then the build (TypeScript + native helpers +
#   seccomp filter).
#
#   scripts/setup.sh           what `warden run` / `warden serve` need
#   scripts/setup.sh --test    plus the runtimes the test suite exercises, and
#                              PostgreSQL and Redis for the cluster tests,
#                              started on loopback (without systemd)
#
# Node.js >= 20 must already be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=false
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=true ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (Warden manages cgroups and per-sandbox uids)" >&2
  exit 1
fi

packages=(bubblewrap libseccomp-dev gcc libc6-dev util-linux coreutils findutils)
# gVisor's runsc for the isolation tier `gvisor` (docs/isolation.md). Debian
# builds it for amd64 and arm64 only; elsewhere that tier stays unavailable.
case "$(dpkg --print-architecture 2>/dev/null)" in
  amd64 | arm64) packages+=(runsc) ;;
esac
# The languages the tests run: python (with matplotlib, for plots as
# image/png; IPython and pandas for Jupyter cells), C and C++ compilers;
# openssl and curl for the egress tests.
# Java, Go and Rust are tested when present and skipped otherwise.
$want_tests && packages+=(python3 g++ bash python3-matplotlib python3-ipython python3-pandas openssl curl)
# The cluster tests' shared state: PostgreSQL and Redis from Debian.
$want_tests && packages+=(postgresql redis-server)
# The dashboard's browser tests drive Debian's Chromium (playwright-core downloads nothing).
$want_tests && packages+=(chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'const [major] = process.versions.node.split(".").map(Number); if (major < 20) { console.error(`setup: Node.js >= 20 needed, found ${process.versions.node}`); process.exit(1); }'

# npm 11 may reject a lockfile that lacks other platforms' optional packages
# (npm/cli#4828, rollup's binaries); then install from it without rewriting it.
if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/warden-npm-ci.log; then
  grep -q "in sync" /tmp/warden-npm-ci.log || { cat /tmp/warden-npm-ci.log >&2; exit 1; }
  echo "setup: npm ci refused the lockfile (npm/cli#4828); installing from it with npm install --no-save"
  npm install --no-save --no-audit --no-fund --loglevel=error
fi
npm run build --silent

# Waits (bounded) until "$@" succeeds: a service that never answers fails
# the setup with its name instead of hanging CI.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 60); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "setup: $what did not answer within 30 s" >&2
  exit 1
}

# PostgreSQL and Redis for the cluster tests, on loopback only. Started by
# hand, not by systemd (CI containers have none); running ones are left as
# they are, so this is safe to repeat.
start_test_services() {
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q . ||
    pg_createcluster "$version" main >/dev/null
  if ! pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    echo "setup: starting PostgreSQL $version"
    pg_ctlcluster "$version" main start
  fi
  wait_for "PostgreSQL $version" pg_isready -q -h 127.0.0.1 -p 5432
  # The tests log in over TCP with a password (Debian's pg_hba asks one on 127.0.0.1).
  (cd / && runuser -u postgres -- psql -X -q -c "ALTER USER postgres PASSWORD 'postgres'")
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "setup: starting Redis"
    # Nothing to persist: the tests' Redis holds rate windows and pub/sub only.
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
  fi
  wait_for "Redis" sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
  echo "setup: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are up"
}
$want_tests && start_test_services

echo "setup: done. Try: npx warden doctor"
