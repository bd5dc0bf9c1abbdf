-- SMART-API (Business hub): the credentials a shop's client reads its own POs, C of Cs and invoices
-- with. Secrets are kept only as SHA-256 digests (each is 32 random bytes: a digest is enough, and it
-- is checked on every request). Runs with search_path = client_api.

-- An API key ``smk_<id>.<secret>``: scoped to one client, revoked by setting revoked_at.
CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    client        text NOT NULL,
    secret_sha256 bytea NOT NULL,
    label         text NOT NULL DEFAULT '',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    revoked_by    text,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_client ON api_keys (client);

-- An OAuth 2.0 client (client credentials grant): one client of the shop each.
CREATE TABLE oauth_clients (
    client_id     text PRIMARY KEY,
    client        text NOT NULL,
    secret_sha256 bytea NOT NULL,
    label         text NOT NULL DEFAULT '',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    revoked_by    text,
    revoked_at    timestamptz
);

-- Access tokens issued at the token endpoint, short-lived; a revoked OAuth client's tokens stop with it.
CREATE TABLE oauth_tokens (
    token_sha256 bytea PRIMARY KEY,
    client_id    text NOT NULL REFERENCES oauth_clients (client_id),
    client       text NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
