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
# Day-two tools (backups, monitoring, pooling) come from trixie: bookworm's
# pgBackRest 2.45 and PgBouncer 1.18 are too old for PostgreSQL 17 / prepared
# statements. The unified stand-in and the ops image share this root filesystem,
# so the postgres uid that owns the data directory is the same in both.
OPS_PKGS="$TRIXIE_PKGS,pgbackrest,pgbouncer,prometheus,prometheus-postgres-exporter,prometheus-pgbouncer-exporter"

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
  # The tag hashes exactly the files the build is sent (the context minus its .dockerignore):
  # what make venv, the tests or the Letta build leave beside them cannot force a rebuild.
  local tag="$prefix:$( (printf '%s' "$*"; python3 scripts/context_files.py "$context" "$dockerfile" \
       | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)"
  if have_image "$tag"; then log "$prefix: cached ($tag)" >&2; echo "$tag"; return; fi
  local args=()
  for a in "$@"; do args+=(--build-arg "$a"); done
  log "$prefix: docker build" >&2
  docker build -q -f "$dockerfile" "${args[@]}" -t "$tag" "$context" >/dev/null
  log "$prefix: built $tag" >&2
  echo "$tag"
}

# --- the applications: offline stand-ins for n8n and Letta -------------------
# Upstream (docker.n8n.io/n8nio/n8n:2.8.4, letta/letta:0.16.8) stays the default
# in docker-compose.yml; these are selected through N8N_IMAGE / LETTA_IMAGE in
# ./.env. Both come from registry packages only (npm, PyPI, Debian); nothing of
# the apps' source is in this repository, only the recipes in compose/apps/.
# Functions below run inside $(...), where `set -e` does not hold: every step
# that can fail says so explicitly.
APP_WORK=${APP_BUILD_WORKDIR:-/var/tmp/consolidation-build}
N8N_RECIPE=1      # bump when n8n_install changes what it produces
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

n8n_install() {  # host-side npm install of compose/apps/n8n/package.json -> prints the context folder
  local recipe=compose/apps/n8n
  local key; key=$( (cat "$recipe/package.json"; echo "$N8N_RECIPE") | sha256sum | cut -c1-12)
  local dir="$APP_WORK/n8n-$key"
  # One npm install per recipe at a time: a second caller (the early start in
  # main, then build_n8n) waits here and then finds the tar made.
  mkdir -p "$APP_WORK" && exec 7>"$dir.lock" && flock 7 || return 1
  if [ -s "$dir/app.tar" ]; then log "n8n: npm tree cached ($dir)" >&2; echo "$dir"; return; fi
  command -v npm >/dev/null || { echo "[images] n8n: npm is needed on the host" >&2; return 1; }
  rm -rf "$dir"; mkdir -p "$dir/app" && cp "$recipe/package.json" "$dir/app/" || return 1
  log "n8n: npm install n8n (host side, about 6 minutes cold; log: $dir/npm.log)" >&2
  local t0=$SECONDS
  (cd "$dir/app" && npm install --omit=dev --no-audit --no-fund --loglevel=error) >"$dir/npm.log" 2>&1 \
    || { tail -20 "$dir/npm.log" >&2; echo "[images] n8n: npm install failed (log: $dir/npm.log)" >&2; return 1; }
  # Source maps and TypeScript declarations never run: half the files, a third of the bytes.
  find "$dir/app/node_modules" -type f \( -name '*.js.map' -o -name '*.mjs.map' -o -name '*.cjs.map' \
    -o -name '*.css.map' -o -name '*.d.ts.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
    || return 1
  tar -C "$dir/app" -cf "$dir/app.tar.tmp" . && mv "$dir/app.tar.tmp" "$dir/app.tar" || return 1
  # The tar is what is kept; the tree goes, in the background, from outside the build context.
  local trash="$APP_WORK/.trash-$key-$$"
  mv "$dir/app" "$trash" && (rm -rf "$trash" >/dev/null 2>&1 7>&- 8>&- &)
  log "n8n: npm tree ready in $((SECONDS - t0)) s ($(du -h "$dir/app.tar" | cut -f1) tar)" >&2
  echo "$dir"
}

n8n_tag() {  # base -> the n8n stand-in's tag
  local recipe=compose/apps/n8n
  echo "consolidation/n8n-standin:$( (printf '%s %s' "$1" "$N8N_RECIPE"; cat "$recipe/package.json" "$recipe/Dockerfile") | sha256sum | cut -c1-12)"
}

n8n_early_start() {  # the npm install needs only the host: start it before the base images are built
  local base; base="consolidation/base-trixie-pg17:$(printf '%s %s %s' trixie "$TRIXIE_PKGS" "$BASE_RECIPE" | sha256sum | cut -c1-12)"
  have_image "$(n8n_tag "$base")" && return 0
  n8n_install >/dev/null &
}

build_n8n() {  # base -> prints tag
  local base=$1 recipe=compose/apps/n8n
  local tag; tag=$(n8n_tag "$base")
  if have_image "$tag"; then log "n8n: cached ($tag)" >&2; echo "$tag"; return; fi
  local dir; dir=$(n8n_install) && [ -s "$dir/app.tar" ] || return 1
  build_from_tar n8n "$recipe/Dockerfile" "$dir" "$base" "$tag"
}

build_from_tar() {  # name dockerfile work-dir base tag -> prints tag. The context is app.tar + Dockerfile only.
  local name=$1 dockerfile=$2 dir=$3 base=$4 tag=$5
  cp "$dockerfile" "$dir/Dockerfile" && printf '*\n!Dockerfile\n!app.tar\n' >"$dir/.dockerignore" || return 1
  log "$name: docker build" >&2
  docker build -q --build-arg "BASE=$base" -t "$tag" "$dir" >/dev/null \
    || { echo "[images] $name: docker build failed" >&2; return 1; }
  log "$name: built $tag" >&2
  echo "$tag"
}

# postgres-meta (Supabase Studio's API): the npm package's own tree, installed on the host.
META_RECIPE=1
build_meta() {  # base -> prints tag
  local base=$1 recipe=compose/apps/postgres-meta
  local version; version=$(cat "$recipe/VERSION")
  local tag="consolidation/postgres-meta-standin:$( (printf '%s %s' "$base" "$META_RECIPE"; cat "$recipe/VERSION" \
      "$recipe/Dockerfile") | sha256sum | cut -c1-12)"
  if have_image "$tag"; then log "postgres-meta: cached ($tag)" >&2; echo "$tag"; return; fi
  command -v npm >/dev/null || { echo "[images] postgres-meta: npm is needed on the host" >&2; return 1; }
  local dir="$APP_WORK/postgres-meta-$version"
  rm -rf "$dir"; mkdir -p "$dir/app" || return 1
  log "postgres-meta: npm install @supabase/postgres-meta@$version (host side, about 30 s; log: $dir/npm.log)" >&2
  ( cd "$dir" && npm pack "@supabase/postgres-meta@$version" --silent >pack.name \
    && tar xzf "$(cat pack.name)" -C app --strip-components=1 \
    && cd app && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error ) >"$dir/npm.log" 2>&1 \
    || { tail -20 "$dir/npm.log" >&2; echo "[images] postgres-meta: npm install failed" >&2; return 1; }
  tar -C "$dir/app" -cf "$dir/app.tar" . && rm -rf "$dir/app" || return 1
  build_from_tar postgres-meta "$recipe/Dockerfile" "$dir" "$base" "$tag"
}

build_letta() {  # base -> prints tag. pip runs in the image's build stage, trusting the host CA.
  local base=$1 ctx=compose/apps/letta
  if ! cmp -s "$HOST_CA_BUNDLE" "$ctx/host-ca.crt"; then cp "$HOST_CA_BUNDLE" "$ctx/host-ca.crt" || return 1; fi
  local tag; tag=$(build_image consolidation/letta-standin "$ctx/Dockerfile" "$ctx" "BASE=$base") || return 1
  have_image "$tag" || { echo "[images] letta: docker build failed" >&2; return 1; }
  echo "$tag"
}

build_apps() {  # trixie-base migrator-style-base -> prints "N8N LETTA EMBEDDINGS META" tags
  local trixie=$1 stub_base=$2
  mkdir -p "$APP_WORK"
  # One builder at a time per machine (two `make images` at once would share the npm folder).
  exec 8>"$APP_WORK/.lock"; flock 8
  # npm (network) and the Letta image (pip, compiling) overlap: both together take
  # about as long as the longer one.
  local n8n_out="$APP_WORK/.n8n-tag.$$"
  build_n8n "$trixie" >"$n8n_out" &
  local n8n_pid=$! letta stub meta
  letta=$(build_letta "$trixie") || { wait "$n8n_pid"; exit 1; }
  meta=$(build_meta "$trixie") || { wait "$n8n_pid"; exit 1; }
  stub=$(build_image consolidation/embeddings-stub compose/apps/embeddings-stub/Dockerfile \
         compose/apps/embeddings-stub "BASE=$stub_base")
  wait "$n8n_pid" || { echo "[images] n8n image failed" >&2; exit 1; }
  local n8n; n8n=$(cat "$n8n_out"); rm -f "$n8n_out"
  have_image "$n8n" && have_image "$stub" && have_image "$meta" || { echo "[images] app images missing" >&2; exit 1; }
  flock -u 8
  echo "$n8n $letta $stub $meta"
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
  [ -f .env ] && grep -v -E '^(UNIFIED_IMAGE|N8N_DB_IMAGE|LETTA_DB_IMAGE|MIGRATOR_IMAGE|IMAGES_MODE|N8N_IMAGE|LETTA_IMAGE|EMBEDDINGS_IMAGE|META_IMAGE|OPS_IMAGE)=' .env >>.env.tmp || true
  printf '%s\n' "$@" >>.env.tmp
  mv .env.tmp .env
}

main() {
  local mode=$IMAGES
  if [ "$mode" = auto ]; then
    if registry_reachable; then mode=upstream; else mode=standin; log "container registry unreachable: building offline stand-ins"; fi
  fi
  wheelhouse
  local migrator_base unified n8n_db letta_db ops_base ops
  if [ "$mode" = upstream ]; then
    migrator_base=python:3.13-slim
    ops_base=debian:trixie-slim
    write_env "IMAGES_MODE=upstream"
  else
    local trixie bookworm
    n8n_early_start  # npm (network, ~6 min cold) runs while the base images are made
    trixie=$(build_rootfs trixie-pg17 trixie "$TRIXIE_PKGS")
    bookworm=$(build_rootfs bookworm-pg15 bookworm "$BOOKWORM_PKGS")
    ops_base=$(build_rootfs trixie-ops trixie "$OPS_PKGS")
    unified=$(build_image consolidation/supabase-standin compose/images/unified/Dockerfile compose/images "BASE=$ops_base")
    n8n_db=$(build_image consolidation/postgres15-standin compose/images/legacy-postgres/Dockerfile compose/images "BASE=$bookworm")
    letta_db=$(build_image consolidation/pgvector17-standin compose/images/legacy-postgres/Dockerfile compose/images "BASE=$trixie")
    migrator_base=$trixie
  fi
  local migrator
  migrator=$(build_image consolidation/migrator compose/images/migrator/Dockerfile . "BASE=$migrator_base")
  # Backups, monitoring and pooling (pgBackRest, Prometheus, the exporters, PgBouncer).
  ops=$(build_image consolidation/ops compose/images/ops/Dockerfile compose/images/ops "BASE=$ops_base")
  # The apps: upstream images are pulled by compose; stand-ins are built here.
  # The embeddings stub (rehearsal only) has no upstream: always built.
  local apps n8n letta stub meta
  if [ "$mode" = upstream ]; then
    stub=$(build_image consolidation/embeddings-stub compose/apps/embeddings-stub/Dockerfile \
           compose/apps/embeddings-stub "BASE=$migrator_base")
  else
    apps=$(build_apps "$trixie" "$trixie"); read -r n8n letta stub meta <<<"$apps"
  fi
  if [ "$mode" = upstream ]; then
    write_env "IMAGES_MODE=upstream" "MIGRATOR_IMAGE=$migrator" "EMBEDDINGS_IMAGE=$stub" "OPS_IMAGE=$ops"
  else
    write_env "IMAGES_MODE=standin" "UNIFIED_IMAGE=$unified" "N8N_DB_IMAGE=$n8n_db" \
      "LETTA_DB_IMAGE=$letta_db" "MIGRATOR_IMAGE=$migrator" \
      "N8N_IMAGE=$n8n" "LETTA_IMAGE=$letta" "EMBEDDINGS_IMAGE=$stub" "META_IMAGE=$meta" "OPS_IMAGE=$ops"
  fi
  wait  # nothing of ours left running
  log "done in ${SECONDS} s ($mode images; selection written to .env)"
}

# --- benchmark only (make bench) ---------------------------------------------
# `bash scripts/images.sh pgcopydb` prints the tag of an image holding Debian
# trixie's pgcopydb (0.17) and a PostgreSQL 17 client, built from the same trixie
# base as the stand-ins (debian:trixie-slim in upstream mode), cached by the
# hash of bench/pgcopydb/. Not part of `make images`.
pgcopydb_image() {
  local base
  if [ "$(sed -n 's/^IMAGES_MODE=//p' .env 2>/dev/null)" = upstream ]; then base=debian:trixie-slim
  else base=$(build_rootfs trixie-pg17 trixie "$TRIXIE_PKGS"); fi
  build_image consolidation/pgcopydb bench/pgcopydb/Dockerfile bench/pgcopydb "BASE=$base"
}

case "${1:-}" in
  pgcopydb) pgcopydb_image ;;
  *) main "$@" ;;
esac
