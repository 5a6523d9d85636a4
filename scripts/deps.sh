#!/usr/bin/env bash
# make deps: idempotent host set-up for the stack.
#   - Docker Engine (Debian's docker.io) and debootstrap (builds offline base images)
#   - Compose v2 CLI plugin (`docker compose`), taken from Debian trixie because
#     bookworm does not ship it; trixie is added as a low-priority (100) apt source
#     so that nothing else on the host is upgraded from it.
#   - starts dockerd when no engine answers, and waits until it does.
# On a machine whose engine and compose plugin already work, it changes nothing.
set -euo pipefail

log() { printf '[deps] %s\n' "$*"; }
have_engine() { docker info >/dev/null 2>&1; }
have_compose() { docker compose version >/dev/null 2>&1; }

APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update (package lists)"
    apt-get update -qq
    APT_UPDATED=1
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "${pkg%%/*}" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

add_trixie_source() {
  local list=/etc/apt/sources.list.d/trixie-compose.list
  local pin=/etc/apt/preferences.d/trixie-low-priority
  [ -f "$list" ] && [ -f "$pin" ] && return 0
  log "adding Debian trixie as a pinned (priority 100) apt source, for the compose plugin only"
  echo "deb http://deb.debian.org/debian trixie main" >"$list"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >"$pin"
  APT_UPDATED=0
}

start_dockerd() {
  have_engine && return 0
  if ! command -v dockerd >/dev/null; then
    echo "[deps] dockerd not found after install" >&2; exit 1
  fi
  log "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    have_engine && { log "docker engine answers"; return 0; }
    sleep 1
  done
  echo "[deps] dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
  exit 1
}

main() {
  if have_engine && have_compose && command -v debootstrap >/dev/null; then
    log "docker engine, compose plugin and debootstrap already work: nothing to do"
    return 0
  fi
  # Engine: docker.io provides dockerd, containerd and runc.
  command -v dockerd >/dev/null || apt_install docker.io
  command -v debootstrap >/dev/null || apt_install debootstrap
  if ! have_compose_plugin_file; then
    add_trixie_source
    apt_install docker-compose/trixie
  fi
  start_dockerd
  have_compose || { echo "[deps] 'docker compose' does not work after install" >&2; exit 1; }
  log "ready: $(docker version --format 'engine {{.Server.Version}}') / $(docker compose version --short 2>/dev/null || echo '?')"
}

have_compose_plugin_file() {
  [ -x /usr/libexec/docker/cli-plugins/docker-compose ] || [ -x /usr/lib/docker/cli-plugins/docker-compose ] \
    || [ -x /usr/local/lib/docker/cli-plugins/docker-compose ] || have_compose
}

main "$@"
