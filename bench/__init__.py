"""Benchmark of the consolidation engine (issue 7).

`make bench-data SIZE=...` fills an n8n-like PostgreSQL 15 source and a
Letta-like PostgreSQL 17 + pgvector source (generated server-side with SQL,
kept in docker volumes between runs). `make bench` then moves the same data,
one method after another, each into a fresh Supabase stand-in: our
`consolidate migrate` (+ `verify`, timed separately), pgcopydb clone,
pg_dump -Fd + pg_restore, and the floor (the target's own COPY FROM of the
same rows from files on its disk). It also times the apps' typical queries on
the legacy databases and on the unified instance, and compares memory and
start-to-healthy times. Results: a table on the terminal, reports/bench.json
and reports/bench.md.

Everything here runs on the host with the project's venv; the tools run in
containers (the migrator image with the working tree's package mounted, and an
image with Debian trixie's pgcopydb). Only containers and volumes labelled
`consolidation.bench` are created, and only those are removed.
"""
