#!/usr/bin/env bash
# make backups: set up WAL archiving + the pgBackRest stanza on the unified
# instance (restarting it once if archive_mode was off), then start the backup
# scheduler, whose first run is a full backup. Idempotent. docs/backups.md.
set -euo pipefail
cd "$(dirname "$0")/.."
compose() { docker compose "$@"; }
rc=0; compose run --rm -T backups setup || rc=$?
if [ "$rc" = 10 ]; then
  echo "[backups] restarting the unified instance once (archive_mode = on)"
  compose restart unified >/dev/null && compose up -d --wait unified >/dev/null
  compose run --rm -T backups setup
elif [ "$rc" != 0 ]; then
  echo "[backups] FAILED: setup exited $rc" >&2; exit "$rc"
fi
compose --profile backups up -d backups
echo "[backups] scheduler running; \`docker compose run --rm backups pgbackrest info\` lists the backups"
