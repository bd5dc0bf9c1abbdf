-- SMART-ID on the Vault hub: people, devices, personnel records, credentials, hub logins.
-- Personal data (names) lives only here; stations get badge ids and signed tokens.
CREATE SCHEMA IF NOT EXISTS vault;

CREATE TABLE IF NOT EXISTS vault.people (
    employee_id text PRIMARY KEY,
    name        text NOT NULL,
    badge_id    text NOT NULL UNIQUE,
    roles       text[] NOT NULL DEFAULT '{}',
    added_at    timestamptz NOT NULL DEFAULT now(),
    added_by    text NOT NULL
);

CREATE TABLE IF NOT EXISTS vault.devices (
    device_id  text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('station', 'hub')),
    key_id     text NOT NULL,
    public_key jsonb NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    added_by   text NOT NULL
);

CREATE TABLE IF NOT EXISTS vault.issuer_keys (
    key_id     text PRIMARY KEY,
    public_key jsonb NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vault.records (
    record_id   bigserial PRIMARY KEY,
    employee_id text NOT NULL REFERENCES vault.people,
    kind        text NOT NULL,
    on_date     date NOT NULL,
    body        jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by text NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_person ON vault.records (employee_id, on_date);

CREATE TABLE IF NOT EXISTS vault.credentials (
    credential_id uuid PRIMARY KEY,
    employee_id   text NOT NULL REFERENCES vault.people,
    badge_id      text NOT NULL,
    kind          text NOT NULL,
    scope         jsonb NOT NULL,
    issued_at     timestamptz NOT NULL,
    not_before    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    key_id        text NOT NULL,
    token         text NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    status_at     timestamptz,
    status_reason text,
    issued_by     text NOT NULL,
    renews        uuid REFERENCES vault.credentials
);
CREATE INDEX IF NOT EXISTS credentials_by_person ON vault.credentials (employee_id);

CREATE TABLE IF NOT EXISTS vault.logins (
    username      text PRIMARY KEY,
    password_hash text NOT NULL,
    role          text NOT NULL,
    employee_id   text REFERENCES vault.people,
    added_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS vault.sessions (
    token_sha256 bytea PRIMARY KEY,
    username     text NOT NULL REFERENCES vault.logins ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
