#!/usr/bin/env bash
# make images: make every image the stack needs available locally.
#
# The compose file names upstream images by default (supabase/postgres, postgres,
# pgvector/pgvector, python:3.13-slim). Where the registry cannot be reached, this
# builds offline stand-ins from Debian packages (debootstrap -> docker import ->
# docker build) and selects them through variables written to ./.env, which
# `docker compose` reads on its own. So one compose file serves both cases.
#
# Every image is tagged with a hash of what it is built from; an image that is
# already there is not rebuilt, so a second run takes seconds.
set -euo pipefail
export DOCKER_BUILDKIT=0  # legacy builder: resolves FROM against local images only
cd "$(dirname "$0")/.."

BASE_RECIPE=1  # bump when build_rootfs changes what it produces
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGES=${IMAGES:-auto}   # auto | upstream | standin
WORK=${IMAGE_WORKDIR:-/var/tmp/consolidation-rootfs}
log() { printf '[images] %s\n' "$*"; }

# Upstream defaults; keep in step with docker-compose.yml.
UP_UNIFIED=$(sed -n 's/^ *image: \${UNIFIED_IMAGE:-\(.*\)}$/\1/p' docker-compose.yml)

hash_of() { cat "$@" | sha256sum | cut -c1-12; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# --- base root filesystems --------------------------------------------------
TRIXIE_PKGS="postgresql-17,postgresql-17-pgvector,postgresql-client-17,python3,python3-venv,ca-certificates"
BOOKWORM_PKGS="postgresql-15,postgresql-client-15,ca-certificates"

build_rootfs() {  # name suite packages -> prints tag
  local name=$1 suite=$2 pkgs=$3
  local tag="consolidation/base-$name:$(printf '%s %s %s' "$suite" "$pkgs" "$BASE_RECIPE" | sha256sum | cut -c1-12)"
  if have_image "$tag"; then log "base $name: cached ($tag)" >&2; echo "$tag"; return; fi
  local dir="$WORK/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  log "base $name: debootstrap $suite + ${pkgs//,/ } (about a minute)" >&2
  debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" "$MIRROR" >"$WORK/$name.log" 2>&1 \
    || { tail -20 "$WORK/$name.log" >&2; echo "[images] debootstrap $suite failed (log: $WORK/$name.log)" >&2; exit 1; }
  # The postgresql packages create a 'main' cluster on install; the images run
  # their own initdb into a volume instead, so drop it. Trim apt caches too.
  chroot "$dir" sh -c 'pg_dropcluster --stop 15 main 2>/dev/null; pg_dropcluster --stop 17 main 2>/dev/null; apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*' >/dev/null 2>&1 || true
  tar -C "$dir" -c . | docker import -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
  rm -rf "$dir"
  log "base $name: built $tag" >&2
  echo "$tag"
}

build_image() {  # tag-prefix dockerfile context [build args...] -> prints tag
  local prefix=$1 dockerfile=$2 context=$3; shift 3
  local tag="$prefix:$( (printf '%s' "$*"; find "$context" -type f -not -path '*/.venv/*' -not -path '*/.git/*' \
       -not -path '*/__pycache__/*' -not -path '*/reports/*' -not -path '*/backups/*' -not -name '.env' \
       -not -path '*/env/*.env' -not -path '*/.pytest_cache/*' -not -path '*/node_modules/*' -print0 \
       | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)"
  if have_image "$tag"; then log "$prefix: cached ($tag)" >&2; echo "$tag"; return; fi
  local args=()
  for a in "$@"; do args+=(--build-arg "$a"); done
  log "$prefix: docker build" >&2
  docker build -q -f "$dockerfile" "${args[@]}" -t "$tag" "$context" >/dev/null
  log "$prefix: built $tag" >&2
  echo "$tag"
}

registry_reachable() {
  timeout 60 docker pull -q "$UP_UNIFIED" >/dev/null 2>&1
}

wheelhouse() {  # Python packages for the migrator image, fetched on the host (its CA is trusted here)
  local dir=compose/images/migrator/wheels
  local stamp="$dir/.requirements.sha"
  local want; want=$(hash_of requirements/migrator.txt)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  log "wheelhouse: pip download for Python 3.13 (host side)" >&2
  rm -rf "$dir"; mkdir -p "$dir"
  python3 -m pip download -q --only-binary=:all: --python-version 3.13 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$dir" -r requirements/migrator.txt
  echo "$want" >"$stamp"
}

write_env() {  # key=value lines into ./.env (compose's project variables)
  : >.env.tmp
  [ -f .env ] && grep -v -E '^(UNIFIED_IMAGE|N8N_DB_IMAGE|LETTA_DB_IMAGE|MIGRATOR_IMAGE|IMAGES_MODE)=' .env >>.env.tmp || true
  printf '%s\n' "$@" >>.env.tmp
  mv .env.tmp .env
}

main() {
  local mode=$IMAGES
  if [ "$mode" = auto ]; then
    if registry_reachable; then mode=upstream; else mode=standin; log "container registry unreachable: building offline stand-ins"; fi
  fi
  wheelhouse
  local migrator_base unified n8n_db letta_db
  if [ "$mode" = upstream ]; then
    migrator_base=python:3.13-slim
    write_env "IMAGES_MODE=upstream"
  else
    local trixie bookworm
    trixie=$(build_rootfs trixie-pg17 trixie "$TRIXIE_PKGS")
    bookworm=$(build_rootfs bookworm-pg15 bookworm "$BOOKWORM_PKGS")
    unified=$(build_image consolidation/supabase-standin compose/images/unified/Dockerfile compose/images "BASE=$trixie")
    n8n_db=$(build_image consolidation/postgres15-standin compose/images/legacy-postgres/Dockerfile compose/images "BASE=$bookworm")
    letta_db=$(build_image consolidation/pgvector17-standin compose/images/legacy-postgres/Dockerfile compose/images "BASE=$trixie")
    migrator_base=$trixie
  fi
  local migrator
  migrator=$(build_image consolidation/migrator compose/images/migrator/Dockerfile . "BASE=$migrator_base")
  if [ "$mode" = upstream ]; then
    write_env "IMAGES_MODE=upstream" "MIGRATOR_IMAGE=$migrator"
  else
    write_env "IMAGES_MODE=standin" "UNIFIED_IMAGE=$unified" "N8N_DB_IMAGE=$n8n_db" \
      "LETTA_DB_IMAGE=$letta_db" "MIGRATOR_IMAGE=$migrator"
  fi
  log "done in ${SECONDS} s ($mode images; selection written to .env)"
}

main "$@"
