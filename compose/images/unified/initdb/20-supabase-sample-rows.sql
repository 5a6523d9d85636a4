-- A small slice of auth/storage/vault with rows, so tests can prove the
-- consolidation leaves Supabase's own data untouched.
SET ROLE supabase_auth_admin;
CREATE TABLE auth.users (
  id uuid PRIMARY KEY DEFAULT extensions.uuid_generate_v4(),
  email text UNIQUE,
  encrypted_password text,
  raw_user_meta_data jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO auth.users (id, email, encrypted_password, raw_user_meta_data, created_at) VALUES
  ('00000000-0000-4000-8000-000000000001', 'ada@example.com',  extensions.crypt('x', extensions.gen_salt('bf', 4)), '{"name":"Ada"}',  '2025-01-01 10:00+00'),
  ('00000000-0000-4000-8000-000000000002', 'alan@example.com', extensions.crypt('y', extensions.gen_salt('bf', 4)), '{"name":"Alan"}', '2025-01-02 11:00+00'),
  ('00000000-0000-4000-8000-000000000003', 'grace@example.com', NULL, '{}', '2025-01-03 12:00+00');
RESET ROLE;

SET ROLE supabase_storage_admin;
CREATE TABLE storage.buckets (
  id text PRIMARY KEY, name text NOT NULL UNIQUE, public boolean DEFAULT false,
  created_at timestamptz DEFAULT now()
);
CREATE TABLE storage.objects (
  id uuid PRIMARY KEY DEFAULT extensions.gen_random_uuid(),
  bucket_id text REFERENCES storage.buckets(id), name text, owner uuid,
  metadata jsonb, created_at timestamptz DEFAULT now()
);
INSERT INTO storage.buckets (id, name, public, created_at) VALUES ('avatars', 'avatars', true, '2025-01-01 10:00+00');
INSERT INTO storage.objects (id, bucket_id, name, owner, metadata, created_at) VALUES
  ('10000000-0000-4000-8000-000000000001', 'avatars', 'ada.png', '00000000-0000-4000-8000-000000000001', '{"size": 1024}', '2025-01-01 10:05+00'),
  ('10000000-0000-4000-8000-000000000002', 'avatars', 'alan.png', '00000000-0000-4000-8000-000000000002', '{"size": 2048}', '2025-01-02 11:05+00');
RESET ROLE;

CREATE TABLE vault.secrets (
  id uuid PRIMARY KEY DEFAULT extensions.gen_random_uuid(), name text UNIQUE, secret text NOT NULL,
  created_at timestamptz DEFAULT now()
);
INSERT INTO vault.secrets (name, secret, created_at) VALUES ('stripe_key', 'sk_test_placeholder', '2025-01-01 10:00+00');
REVOKE ALL ON SCHEMA vault FROM PUBLIC;
