# Shared by setup.sh and scheduler.sh. The superuser session pins its search_path
# (the instance holds code written by the apps and by Supabase's `postgres`).
STANZA=${STANZA:-unified}
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
