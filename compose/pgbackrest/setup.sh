#!/bin/bash
# One-time set-up of backups on the unified instance (`make backups`), never
# inside archive_command: points archive_command at pgBackRest, turns
# archive_mode on (exit 10 = "restart the server, then run me again"), creates
# the stanza (idempotent), the table the scheduler records its runs in, and
# checks that a WAL segment reaches the repository. Runs as the postgres OS user
# in a container of the unified image, over the shared unix socket.
set -euo pipefail
. /opt/backups/lib.sh

command -v pgbackrest >/dev/null || {
  log "this image ($(. /etc/os-release; echo "$PRETTY_NAME")) has no pgbackrest: archiving would fail and WAL pile up." \
      "Build compose/images/unified-pgbackrest and set UNIFIED_IMAGE (docs/backups.md)"; exit 2; }
wait_for_server
sql "ALTER SYSTEM SET archive_command = 'pgbackrest --stanza=$STANZA archive-push %p'"
# A segment at least every 5 minutes while anything is written: bounds how much a
# lost volume can lose (the RPO), at the price of mostly-empty 16 MB segments
# (compressed to almost nothing) on an idle-ish server.
sql "ALTER SYSTEM SET archive_timeout = '${ARCHIVE_TIMEOUT:-300}'"
sql "SELECT pg_catalog.pg_reload_conf()" >/dev/null
sql_file /opt/backups/backup_runs.sql
if [ "$(sql 'SHOW archive_mode')" != on ]; then
  sql "ALTER SYSTEM SET archive_mode = 'on'"
  log "archive_mode set to on: the server must restart once"
  exit 10
fi
pgbackrest --stanza="$STANZA" stanza-create
pgbackrest --stanza="$STANZA" check
log "backups set up: WAL archiving to the repository works"
