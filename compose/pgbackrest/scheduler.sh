#!/bin/bash
# The backup schedule (compose service `backups`): a full backup when the last
# successful full is older than BACKUP_FULL_EVERY seconds (default a week), else
# a differential when the last success is older than BACKUP_DIFF_EVERY (default
# a day). Each run is recorded in _consolidation_ops.backup_runs, success or not,
# so its age is visible to monitoring. A minimal loop rather than cron: one
# process, no root, the schedule stated in the state it reads, and a missed slot
# (container down) is caught up on start.
set -uo pipefail
. /opt/backups/lib.sh
FULL_EVERY=${BACKUP_FULL_EVERY:-604800}
DIFF_EVERY=${BACKUP_DIFF_EVERY:-86400}
TICK=${BACKUP_TICK:-30}

age_of() {  # seconds since the last successful backup of kinds $1 (SQL list), or a huge number
  sql "SELECT coalesce(extract(epoch FROM now() - max(finished_at))::bigint, 2147483647)
         FROM _consolidation_ops.backup_runs WHERE ok AND kind IN ($1)"
}

wait_for_server || exit 1
if [ "$(sql 'SHOW archive_mode')" != on ]; then
  log "archive_mode is off: run \`make backups\` (it sets up archiving) first"; exit 1
fi
trap 'log "stopping"; exit 0' TERM INT
while true; do
  if [ "$(age_of "'full'")" -ge "$FULL_EVERY" ]; then run_backup full
  elif [ "$(age_of "'full','diff','incr'")" -ge "$DIFF_EVERY" ]; then run_backup diff
  fi
  sleep "$TICK" & wait $!
done
