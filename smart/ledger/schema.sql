-- The hub's ledger in PostgreSQL. Run by the owner role (migrations); the app role only INSERTs and SELECTs.
-- Idempotent: safe to run at every start. The triggers are a guardrail; tamper evidence is the hashes,
-- the signed heads, the checkpoints and the witnesses' cosignatures.

CREATE TABLE IF NOT EXISTS ledger_nodes (
    node text PRIMARY KEY,
    key_name text NOT NULL,
    key_id text NOT NULL,
    public_key bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger_witnesses (
    name text PRIMARY KEY,
    key_id text NOT NULL,
    public_key bytea NOT NULL
);

-- One row per entry, at its global index; the entry bytes are stored verbatim.
CREATE TABLE IF NOT EXISTS ledger_entries (
    idx bigint PRIMARY KEY,
    node text NOT NULL,
    node_seq bigint NOT NULL,
    entry bytea NOT NULL,
    UNIQUE (node, node_seq)
);

-- Keys the hub's administrator established: each row counts only with the signature of the
-- administrator's key (ledger-admin) over its registration; a row without one is trusted by nobody.
-- (ledger_nodes and ledger_witnesses above are the older, unsigned form: no verifier reads them.)
CREATE TABLE IF NOT EXISTS ledger_registrations (
    role text NOT NULL CHECK (role IN ('node', 'witness')),
    name text NOT NULL,
    key_name text NOT NULL,
    public_key bytea NOT NULL,
    signature bytea NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, name, public_key, signature)
);

-- Every signed chain head a node shipped, with the global index the hub gave that entry.
CREATE TABLE IF NOT EXISTS ledger_heads (
    node text NOT NULL,
    node_seq bigint NOT NULL,
    idx bigint NOT NULL,
    entry_hash bytea NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL,
    PRIMARY KEY (node, node_seq)
);

-- Perfect subtrees of the Merkle tree from level 8 (256 leaves) up; lower levels are recomputed.
CREATE TABLE IF NOT EXISTS ledger_subtrees (
    level smallint NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Every checkpoint the hub signed (the signed note as text) and the frontier it was computed from.
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size bigint PRIMARY KEY,
    root bytea NOT NULL,
    note text NOT NULL,
    frontier bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger_cosignatures (
    size bigint NOT NULL,
    witness text NOT NULL,
    line text NOT NULL,
    PRIMARY KEY (size, witness)
);

-- Fork alarms: a node offered an entry that conflicts with one already in the log.
CREATE TABLE IF NOT EXISTS ledger_alarms (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised_at timestamptz NOT NULL DEFAULT now(),
    node text NOT NULL,
    node_seq bigint NOT NULL,
    detail text NOT NULL,
    stored bytea,
    offered bytea
);

ALTER TABLE ledger_alarms ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'fork';

-- An administrator's decision on an alarm (which closes it), signed by the ledger-admin key; the
-- decision is also appended to the ledger as a hub node's entry.
CREATE TABLE IF NOT EXISTS ledger_alarm_decisions (
    alarm_id bigint NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    decided_by text NOT NULL,
    decision text NOT NULL,
    signature bytea NOT NULL,
    PRIMARY KEY (alarm_id, signature)
);

-- Entries as JSON for dashboards and ad-hoc queries (read-only by construction).
CREATE OR REPLACE VIEW ledger_log AS
    SELECT idx, node, node_seq, convert_from(entry, 'UTF8')::jsonb AS body FROM ledger_entries;

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ledger_nodes', 'ledger_witnesses', 'ledger_entries', 'ledger_heads',
                             'ledger_subtrees', 'ledger_checkpoints', 'ledger_cosignatures', 'ledger_alarms',
                             'ledger_registrations', 'ledger_alarm_decisions']
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()', t || '_append_only', t);
        EXECUTE format('REVOKE ALL ON TABLE %I FROM PUBLIC', t);
    END LOOP;
END
$$;
