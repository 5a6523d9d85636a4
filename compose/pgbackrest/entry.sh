#!/bin/bash
# `docker compose run --rm backups [setup | scheduler | backup full|diff|incr | verify | pgbackrest ...]`:
# the default is the scheduler; `backup KIND` takes one backup now and records
# it like a scheduled one; `verify` checks every file of the repository against
# its checksum and, unlike `pgbackrest verify` (which reports "status: error"
# and still exits 0), fails when one is wrong; anything else runs as given
# (pgbackrest info, check ...) with the stanza's environment.
set -euo pipefail
case "${1:-scheduler}" in
  setup|scheduler) exec bash "/opt/backups/${1:-scheduler}.sh" ;;
  backup) . /opt/backups/lib.sh; set +e; wait_for_server && run_backup "${2:-diff}"; exit $? ;;
  verify)
    . /opt/backups/lib.sh
    out=$(pgbackrest verify --verbose 2>&1) || { printf '%s\n' "$out"; exit 1; }
    printf '%s\n' "$out"
    if printf '%s\n' "$out" | grep -q 'status: error'; then log "verify FAILED: the repository has invalid files"; exit 1; fi
    log "verify: every backup and WAL file matches its checksum" ;;
  *) . /opt/backups/lib.sh; exec "$@" ;;
esac
