# Shared by setup.sh and scheduler.sh. The superuser session pins its search_path
# (the instance holds code written by the apps and by Supabase's `postgres`).
STANZA=${STANZA:-unified}
export PGBACKREST_STANZA=$STANZA
export PGHOST=/var/run/postgresql PGDATABASE=postgres PGUSER=${POSTGRES_USER:-supabase_admin}
export PGPASSWORD=${POSTGRES_PASSWORD:-}
export PGOPTIONS="-c search_path=pg_catalog,pg_temp"
log() { printf '[backups] %s %s\n' "$(date -u +%FT%TZ)" "$*"; }
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
sql_file() { psql -X -q -v ON_ERROR_STOP=1 -f "$1" >/dev/null; }
wait_for_server() {
  for _ in $(seq 1 120); do pg_isready -q && return 0; sleep 1; done
  log "the unified instance does not answer on $PGHOST"; return 1
}

run_backup() {  # kind: one pgBackRest backup, recorded in _consolidation_ops.backup_runs either way
  local kind=$1 started out rc label err
  started=$(sql "SELECT pg_catalog.now()")
  log "starting $kind backup"
  out=$(pgbackrest --stanza="$STANZA" --type="$kind" backup 2>&1); rc=$?
  printf '%s\n' "$out"
  label=""; [ $rc -ne 0 ] || label=$(pgbackrest --stanza="$STANZA" --output=json info 2>/dev/null \
          | sed -n 's/.*"label":"\([^"]*\)".*/\1/p' | tail -1)
  err=""; [ $rc -eq 0 ] || err=$(printf '%s\n' "$out" | grep -E 'ERROR|WARN' | tail -1)
  psql -X -q -v ON_ERROR_STOP=1 -v kind="$kind" -v started="$started" -v ok="$([ $rc -eq 0 ] && echo true || echo false)" \
       -v label="$label" -v err="$err" >/dev/null <<'SQL' || log "could not record the run"
INSERT INTO _consolidation_ops.backup_runs (kind, started_at, finished_at, ok, label, error)
VALUES (:'kind', :'started', pg_catalog.now(), :'ok', nullif(:'label', ''), nullif(:'err', ''));
SQL
  if [ $rc -eq 0 ]; then log "$kind backup done ($label)"; else log "$kind backup FAILED (exit $rc)"; fi
  return $rc
}
