#!/bin/sh
# PgBouncer's start (service `pgbouncer`, docs/pooling.md). The auth file gets
# exactly two entries, written to a tmpfs readable by this user only: the auth
# role (auth_user in pgbouncer.ini, which runs auth_query) and the stats-only
# console user of the metrics exporter. App roles are not in it: their SCRAM
# verifiers come from the server through auth_query. Never prints a secret.
set -eu
ini=${PGBOUNCER_INI:-/etc/pgbouncer/pgbouncer.ini}   # another file only in tests (a variant config)
: "${POOLER_AUTH_PASSWORD:?POOLER_AUTH_PASSWORD missing: env/pooler.env (make env)}"
: "${POOLER_STATS_PASSWORD:?POOLER_STATS_PASSWORD missing: env/pooler.env (make env)}"
auth_user=$(sed -n 's/^auth_user *= *//p' "$ini")
stats_user=$(sed -n 's/^stats_users *= *//p' "$ini")
umask 077
{
  printf '"%s" "%s"\n' "$auth_user" "$POOLER_AUTH_PASSWORD"
  printf '"%s" "%s"\n' "$stats_user" "$POOLER_STATS_PASSWORD"
} > /run/pgbouncer/userlist.txt
unset POOLER_AUTH_PASSWORD POOLER_STATS_PASSWORD
exec pgbouncer "$ini"
