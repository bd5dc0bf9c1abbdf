-- Projects (Floor hub): the milestone dates a planner commits a PO to, and the invoices and credit notes
-- Pay recorded on the ledger (an index of the hub log). Runs with search_path = projects.

-- A planned date per PO and milestone; version counts its changes (each one is on the ledger).
CREATE TABLE milestone_plans (
    po        text NOT NULL,
    milestone text NOT NULL CHECK (milestone IN ('received', 'in process', 'inspected', 'shipped', 'invoiced')),
    due_on    date NOT NULL,
    reason    text NOT NULL DEFAULT '',
    version   integer NOT NULL DEFAULT 1,
    set_by    text NOT NULL,
    set_at    timestamptz NOT NULL,
    PRIMARY KEY (po, milestone)
);

-- Pay's ``invoice.issued`` and ``credit_note.issued`` entries, as the hub log holds them: append-only,
-- re-derivable from the log.
CREATE TABLE invoices (
    ledger_idx bigint NOT NULL,
    kind       text NOT NULL,
    document   text NOT NULL,
    po         text NOT NULL,
    line       text NOT NULL,
    quantity   integer NOT NULL,
    amount     numeric(14, 2) NOT NULL,
    at         timestamptz NOT NULL,
    node_seq   bigint NOT NULL,
    entry_hash bytea NOT NULL,
    PRIMARY KEY (ledger_idx, line)
);
CREATE INDEX invoices_line ON invoices (po, line);
