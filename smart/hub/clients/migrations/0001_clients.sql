-- ClientManager (Vault hub): clients, customer POs and their lines, each line's flowdowns, and the
-- contract reviews (AS9100D 8.2.3). Runs with search_path = clients.

CREATE TABLE clients (
    code            text PRIMARY KEY,
    name            text NOT NULL,
    retention       text NOT NULL,
    nadcap_required boolean NOT NULL,
    quality_clauses text[] NOT NULL DEFAULT '{}',
    version         integer NOT NULL DEFAULT 1,
    added_by        text NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE purchase_orders (
    po          text PRIMARY KEY,
    client      text NOT NULL REFERENCES clients (code),
    received_on date NOT NULL,
    added_by    text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchase_orders_client ON purchase_orders (client);

-- version counts every change to the line or its flowdowns; a review holds for the version it saw.
CREATE TABLE po_lines (
    po               text NOT NULL REFERENCES purchase_orders (po),
    line             text NOT NULL,
    part             text NOT NULL,
    part_revision    text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit             text NOT NULL,
    serials          text[] NOT NULL DEFAULT '{}',
    lot              text,
    unit_price       numeric(14, 2) NOT NULL CHECK (unit_price >= 0),
    due_date         date NOT NULL,
    version          integer NOT NULL DEFAULT 1,
    reviewed_version integer,
    released_version integer,
    released_at      timestamptz,
    PRIMARY KEY (po, line),
    CHECK (cardinality(serials) = 0 OR cardinality(serials) = quantity),
    CHECK (cardinality(serials) > 0 OR lot IS NOT NULL)
);
CREATE INDEX po_lines_po_pattern ON po_lines (po text_pattern_ops);
CREATE INDEX po_lines_part_pattern ON po_lines (part text_pattern_ops);
CREATE INDEX po_lines_due ON po_lines (due_date, po, line);

CREATE TABLE flowdowns (
    po                  text NOT NULL,
    line                text NOT NULL,
    position            integer NOT NULL,
    spec                text NOT NULL,
    spec_revision       text NOT NULL,
    class               text NOT NULL,
    acceptance_criteria text NOT NULL,
    nadcap_required     boolean NOT NULL,
    retention           text NOT NULL,
    PRIMARY KEY (po, line, position),
    FOREIGN KEY (po, line) REFERENCES po_lines (po, line) ON DELETE CASCADE
);

-- Append-only for the app role: a review is a record, never edited.
CREATE TABLE contract_reviews (
    id           bigserial PRIMARY KEY,
    po           text NOT NULL,
    line         text NOT NULL,
    line_version integer NOT NULL,
    reviewer     text NOT NULL,
    reviewed_at  timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
    notes        text NOT NULL DEFAULT '',
    FOREIGN KEY (po, line) REFERENCES po_lines (po, line)
);
CREATE INDEX contract_reviews_line ON contract_reviews (po, line, id);
