#!/bin/bash
# `docker compose run --rm backups [setup | scheduler | pgbackrest ...]`:
# the default is the scheduler; anything else runs as given (pgbackrest info,
# check, verify ...) with the stanza's environment.
set -euo pipefail
case "${1:-scheduler}" in
  setup|scheduler) exec bash "/opt/backups/${1:-scheduler}.sh" ;;
  *) . /opt/backups/lib.sh; exec "$@" ;;
esac
