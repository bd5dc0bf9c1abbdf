-- QACentral (Vault hub): every station's NCRs as their ledger entries tell them, the hub's evidence,
-- dispositions signed at the hub, and CAPAs. Runs with search_path = qa.

-- An index of the stations' qa.ncr.* entries in the hub log (append-only; re-derivable from the log).
CREATE TABLE ncr_events (
    ledger_idx bigint PRIMARY KEY,
    station    text NOT NULL,
    ncr        text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('opened', 'dispositioned', 'closed')),
    job        text,
    part       text,
    serial     text,
    record     jsonb NOT NULL,
    at         timestamptz NOT NULL,
    node_seq   bigint NOT NULL,
    entry_hash bytea NOT NULL
);
CREATE INDEX ncr_events_ncr ON ncr_events (ncr, ledger_idx);
CREATE INDEX ncr_events_job ON ncr_events (station, job);

CREATE TABLE evidence (
    id       bigserial PRIMARY KEY,
    ncr      text NOT NULL,
    note     text NOT NULL,
    sha256   text,
    added_by text NOT NULL,
    added_at timestamptz NOT NULL
);

-- A disposition (and closure) decided at the hub, as signed and as sent to the station.
CREATE TABLE decisions (
    id                        bigserial PRIMARY KEY,
    ncr                       text NOT NULL,
    station                   text NOT NULL,
    disposition               text NOT NULL CHECK (disposition IN ('use-as-is', 'repair', 'rework', 'scrap')),
    design_authority_approval text,
    close                     boolean NOT NULL,
    evidence                  text,
    marking                   text,
    signed_by                 text NOT NULL,
    signature                 jsonb NOT NULL,
    entry                     bigint NOT NULL,
    kv_revision               bigint,
    at                        timestamptz NOT NULL,
    CHECK (disposition NOT IN ('use-as-is', 'repair') OR design_authority_approval IS NOT NULL),
    CHECK (disposition <> 'scrap' OR marking IS NOT NULL)
);
CREATE INDEX decisions_ncr ON decisions (ncr, id);

CREATE TABLE capas (
    id            text PRIMARY KEY,
    ncrs          text[] NOT NULL,
    root_cause    text NOT NULL,
    action        text NOT NULL,
    owner         text NOT NULL,
    due_on        date NOT NULL,
    status        text NOT NULL CHECK (status IN ('open', 'verified', 'not-effective')),
    verification  text,
    verified_by   text,
    verified_at   timestamptz,
    opened_by     text NOT NULL,
    opened_at     timestamptz NOT NULL
);
