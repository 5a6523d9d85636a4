-- A source schema (public, PostgreSQL 15+) holding every awkward thing the
-- engine must move intact. Used by tests/test_migrate.py.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS seg WITH SCHEMA public;   -- a type without binary I/O

CREATE TABLE measurements (id integer PRIMARY KEY, span seg);
INSERT INTO measurements SELECT i, (i || ' .. ' || (i + 0.5))::seg FROM generate_series(1, 20) i;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);

CREATE SEQUENCE shared_seq;
CREATE SEQUENCE negative_seq INCREMENT BY -1 MINVALUE -1000000 MAXVALUE -1 START WITH -1;

CREATE TABLE "Mixed Case" (
  id serial PRIMARY KEY,
  "select" text,              -- reserved word
  "CamelCol" integer
);

CREATE TABLE everything (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uid uuid DEFAULT uuid_generate_v4(),
  shared_a bigint DEFAULT nextval('shared_seq'),
  neg bigint DEFAULT nextval('negative_seq'),
  mood mood,
  pos positive_int,
  pr pair,
  n numeric,
  f8 double precision,
  f4 real,
  ts timestamp,
  tstz timestamptz,
  d date,
  iv interval,
  b bytea,
  j json,
  jb jsonb,
  arr integer[],
  arr2 text[][],
  rng int4range,
  trng tstzrange,
  ip inet,
  net cidr,
  tsv tsvector,
  money_col money,
  bits bit varying(16),
  doubled bigint GENERATED ALWAYS AS (coalesce(pos, 0) * 2) STORED,
  dropped_later text,
  note text
);
ALTER TABLE everything DROP COLUMN dropped_later;
COMMENT ON TABLE everything IS 'every type we know';
COMMENT ON COLUMN everything.j IS 'json keeps its exact text';

INSERT INTO everything (mood, pos, pr, n, f8, f4, ts, tstz, d, iv, b, j, jb, arr, arr2, rng, trng, ip, net, tsv, money_col, bits, note)
SELECT (ARRAY['sad','ok','happy'])[1 + i % 3]::mood, i, ROW(i, 'p' || i)::pair,
       CASE i % 5 WHEN 0 THEN 'NaN'::numeric WHEN 1 THEN 1e-30 * i WHEN 2 THEN -123456789012345678901234567890.123456789 ELSE i / 7.0 END,
       CASE i % 4 WHEN 0 THEN 'Infinity'::float8 WHEN 1 THEN '-Infinity' WHEN 2 THEN 'NaN' ELSE 1.0 / 3 * i END,
       (i / 3.0)::real,
       CASE i % 3 WHEN 0 THEN 'infinity'::timestamp WHEN 1 THEN '0044-03-15 12:00 BC' ELSE '2024-02-29 23:59:59.999999' END,
       CASE i % 3 WHEN 0 THEN '-infinity'::timestamptz ELSE '2025-06-01 12:00+05:30'::timestamptz + i * interval '1 hour' END,
       CASE i % 2 WHEN 0 THEN '4713-01-01 BC'::date ELSE 'infinity'::date END,
       make_interval(years => i, days => -i, secs => i * 1.5),
       (SELECT string_agg(set_byte('\x00'::bytea, 0, (g + i) % 256), '') FROM generate_series(0, 255) g),
       ('{ "b": 1,  "a": [1, 2 , 3], "dup": 1, "dup": 2, "n": ' || i || ' }')::json,
       jsonb_build_object('k', i, 'nested', jsonb_build_object('x', ARRAY[i, NULL]), 'u', 'é€😀'),
       CASE WHEN i % 4 = 0 THEN NULL ELSE ARRAY[i, NULL, -i] END,
       ARRAY[['a', NULL], ['c' || i, 'd']],
       int4range(i, i + 10), tstzrange('2025-01-01', NULL),
       ('10.0.' || (i % 255) || '.1/16')::inet, '192.168.0.0/24'::cidr,
       to_tsvector('simple', 'the quick brown fox ' || i),
       (i * 1.25)::money, B'1010'::bit varying(16),
       CASE WHEN i % 10 = 0 THEN NULL ELSE E'line\ttab\nnewline \\ backslash ' || i END
FROM generate_series(1, 500) i;

INSERT INTO "Mixed Case" ("select", "CamelCol") SELECT 'v' || i, i FROM generate_series(1, 30) i;

-- No key at all, with duplicate rows.
CREATE TABLE no_key (a integer, b text);
INSERT INTO no_key SELECT i % 7, 'dup' FROM generate_series(1, 100) i;

-- Self-referencing tree and deferred circular FKs.
-- Columns named like the aliases verify's queries use (t, r, x).
CREATE TABLE tree (id integer PRIMARY KEY, parent integer REFERENCES tree(id), label text, t integer, r text, x text);
INSERT INTO tree VALUES (1, NULL, 'root', 0, 'r', 'x'), (2, 1, 'a', 0, 'r', 'x'), (3, 1, 'b', 0, 'r', 'x'),
  (4, 3, 'c', 0, 'r', 'x');
CREATE TABLE chicken (id integer PRIMARY KEY, egg_id integer);
CREATE TABLE egg (id integer PRIMARY KEY, chicken_id integer REFERENCES chicken(id) DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE chicken ADD CONSTRAINT chicken_egg_fk FOREIGN KEY (egg_id) REFERENCES egg(id) DEFERRABLE INITIALLY DEFERRED;
BEGIN;
INSERT INTO chicken VALUES (1, 1), (2, 2);
INSERT INTO egg VALUES (1, 1), (2, 2);
COMMIT;

-- A foreign key onto a plain unique index (not a constraint).
CREATE TABLE codes (code text NOT NULL);
CREATE UNIQUE INDEX codes_code ON codes (code);
CREATE TABLE uses_code (id integer PRIMARY KEY, c text REFERENCES codes (code));
INSERT INTO codes VALUES ('a'), ('b');
INSERT INTO uses_code VALUES (1, 'a'), (2, 'b'), (3, NULL);

-- Old-style inheritance (copied ONLY per table; the parent is analyzed last).
CREATE TABLE animals (id integer PRIMARY KEY, name text);
CREATE TABLE dogs (breed text) INHERITS (animals);
INSERT INTO animals VALUES (1, 'generic');
INSERT INTO dogs VALUES (2, 'rex', 'collie'), (3, 'fido', NULL);

-- Partitioned table.
CREATE TABLE events (id bigserial, at date NOT NULL, payload jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events (at, payload) SELECT date '2024-06-01' + i, jsonb_build_object('i', i) FROM generate_series(1, 400) i;

CREATE UNLOGGED TABLE scratchpad (k text PRIMARY KEY, v text);
INSERT INTO scratchpad VALUES ('a', '1'), ('b', '2');
CREATE TABLE empty_one (id integer PRIMARY KEY, v text);

-- A trigger that rewrites rows: it must not fire on copied rows.
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.msg := upper(NEW.msg) || '!'; RETURN NEW; END $$;
CREATE TABLE messages (id serial PRIMARY KEY, msg text, shared_b bigint DEFAULT nextval('shared_seq'));
INSERT INTO messages (msg) SELECT 'hello ' || i FROM generate_series(1, 50) i;
CREATE TRIGGER messages_shout BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION shout();
INSERT INTO messages (msg) VALUES ('inserted after trigger');
ALTER TABLE messages DISABLE TRIGGER messages_shout;
ALTER TABLE messages ENABLE TRIGGER messages_shout;

-- Row level security.
CREATE TABLE secrets (id serial PRIMARY KEY, owner_name text, secret text);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY secrets_own ON secrets USING (owner_name = current_user);
INSERT INTO secrets (owner_name, secret) VALUES ('alice', 's1'), ('bob', 's2');

-- Views, a materialized view, and indexes of several kinds.
CREATE VIEW happy_things AS SELECT id, note FROM everything WHERE mood = 'happy';
CREATE MATERIALIZED VIEW mood_counts AS SELECT mood, count(*) AS n FROM everything GROUP BY mood;
CREATE UNIQUE INDEX mood_counts_mood ON mood_counts (mood);
CREATE INDEX everything_lower_note ON everything (lower(note));
CREATE INDEX everything_partial ON everything (n) WHERE pos > 100;
CREATE INDEX everything_jb ON everything USING gin (jb);
CREATE INDEX everything_tsv ON everything USING gin (tsv);

-- Sequences moved past their start.
SELECT setval('negative_seq', -42);
SELECT nextval('shared_seq') FROM generate_series(1, 10);
