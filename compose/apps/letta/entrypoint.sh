#!/bin/bash
# Like upstream's startup.sh for an external database: run the schema
# migrations (alembic upgrade head), then the server. Letta's server does not
# create its tables itself.
set -euo pipefail
: "${LETTA_PG_URI:?LETTA_PG_URI must point at the PostgreSQL database}"
cd /app
echo "letta-entrypoint: alembic upgrade head"
if ! alembic upgrade head; then
  echo "letta-entrypoint: database migration failed" >&2
  exit 1
fi
args=(server --host "${HOST:-0.0.0.0}" --port "${PORT:-8283}")
[ "${SECURE:-false}" = true ] && args+=(--secure)
echo "letta-entrypoint: starting letta ${args[*]}"
exec letta "${args[@]}"
