CREATE TABLE entries (
    reference text PRIMARY KEY,
    po text NOT NULL,
    line text,
    kind text NOT NULL CHECK (kind IN ('feedback', 'complaint')),
    text text NOT NULL,
    received_at timestamptz NOT NULL,
    received_by text NOT NULL,
    ledger_seq bigint
);
