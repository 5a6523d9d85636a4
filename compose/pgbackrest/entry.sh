#!/bin/bash
# `docker compose run --rm backups [setup | scheduler | backup full|diff|incr | pgbackrest ...]`:
# the default is the scheduler; `backup KIND` takes one backup now and records
# it like a scheduled one; anything else runs as given (pgbackrest info, check,
# verify ...) with the stanza's environment.
set -euo pipefail
case "${1:-scheduler}" in
  setup|scheduler) exec bash "/opt/backups/${1:-scheduler}.sh" ;;
  backup) . /opt/backups/lib.sh; wait_for_server; run_backup "${2:-diff}" ;;
  *) . /opt/backups/lib.sh; exec "$@" ;;
esac
