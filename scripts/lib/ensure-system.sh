# shellcheck shell=bash
# What every entry point needs before it can build poolctl and start its throwaway servers:
# Debian packages, Node.js 20+, npm dependencies. Sourced by scripts/test and scripts/demo (from
# the repository root) under `set -euo pipefail`; `ensure_system` does all three.

# Debian packages the test rigs and the demo run, as "package:command-it-provides". The one list:
# add the PgBouncer package here when its rig lands.
DEB_PACKAGES=(
  postgresql:/usr/lib/postgresql # server binaries; the rig picks the newest version there
  mariadb-server:mariadbd        # MariaDB rig: mariadb-install-db + mariadbd in a temp dir
  mariadb-client:mariadb         # the rig's sql() helper
  tmux:tmux                      # pseudo-terminal end-to-end tests
  procps:ps
  util-linux:runuser             # runs the servers as an unprivileged user when we are root (and
                                 # setpriv: the MariaDB rig's server dies with its test process)
  prometheus-postgres-exporter:/usr/bin/prometheus-postgres-exporter # the real exporter's sessions
  prometheus-mysqld-exporter:/usr/bin/prometheus-mysqld-exporter     # (test/faults/exporter-*)
  prometheus:/usr/bin/prometheus # the Prometheus target's rig (test/helpers/prometheus-server.ts)
  pgbouncer:/usr/sbin/pgbouncer  # prevent --emit pgbouncer: the emitted pgbouncer.ini starts a real PgBouncer
)

log() { printf '==> %s\n' "$*" >&2; }

# Installs the missing packages as root via apt-get; otherwise prints the exact command, exit 1.
ensure_system_packages() {
  local missing=() entry pkg provides status
  for entry in "${DEB_PACKAGES[@]}"; do
    pkg=${entry%%:*}
    provides=${entry#*:}
    if command -v dpkg-query >/dev/null 2>&1; then
      status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
      [[ $status == 'install ok installed' ]] || missing+=("$pkg")
    elif ! command -v "$provides" >/dev/null 2>&1 && [[ ! -e $provides ]]; then
      missing+=("$pkg")
    fi
  done

  if ((${#missing[@]} > 0)); then
    local install=(apt-get install -y --no-install-recommends "${missing[@]}")
    if [[ $(id -u) -ne 0 ]]; then
      log "missing system packages: ${missing[*]}"
      log "install them with:  sudo apt-get update && sudo ${install[*]}"
      exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
      log "missing system packages (${missing[*]}) and no apt-get here; install their equivalents"
      exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update
    # Debian's postgresql creates and starts a cluster "main" on 5432, mariadb-server a server on
    # 3306, the exporters services on 9187 and 9104, prometheus one on 9090 (where systemd
    # runs); the tests never use them (they run their own servers and exporters on free ports).
    DEBIAN_FRONTEND=noninteractive "${install[@]}"
  fi
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 ||
    ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    log "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"
    exit 1
  fi
}

# `npm ci` on a fresh clone, or when package-lock.json changed since the last install.
ensure_npm_dependencies() {
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log 'npm ci'
    npm ci
  fi
}

ensure_system() {
  ensure_system_packages
  ensure_node
  ensure_npm_dependencies
}
