-- HandoffCentral (Floor hub): what was released to which stations, and the floor's receipts and
-- shipments as the stations recorded them (an index of the hub log). Runs with search_path = handoff.

-- One row per release of a PO line: the line's version, the traveler revision, and each station's keys.
CREATE TABLE releases (
    id                bigserial PRIMARY KEY,
    po                text NOT NULL,
    line              text NOT NULL,
    line_version      integer NOT NULL,
    traveler_revision integer NOT NULL,
    stations          text[] NOT NULL,
    records           jsonb NOT NULL,
    withdrawn         jsonb NOT NULL DEFAULT '[]',
    released_by       text NOT NULL,
    released_at       timestamptz NOT NULL
);
CREATE INDEX releases_line ON releases (po, line, id);

-- Receipts and shipments allowed at the stations (``module.decision`` entries of verb receive or ship),
-- and invoices; re-derivable from the log, append-only for the app role.
CREATE TABLE floor_events (
    ledger_idx bigint PRIMARY KEY,
    station    text NOT NULL,
    verb       text NOT NULL,
    job        text,
    po         text,
    line       text,
    serials    text[] NOT NULL DEFAULT '{}',
    quantity   integer,
    at         timestamptz NOT NULL,
    node_seq   bigint NOT NULL,
    entry_hash bytea NOT NULL
);
CREATE INDEX floor_events_line ON floor_events (po, line);
