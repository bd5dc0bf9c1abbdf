-- Pay (Business hub): invoices and credit notes for shipped, certified PO lines, and the certificates
-- of conformance the shipping stations signed (an index of the hub log). Runs with search_path = pay.

-- sr-1's signed C of Cs: ``record.job`` entries whose job carries ``coc_signed_by``; append-only,
-- re-derivable from the log. A receiving station's job record may not name its PO line: then the
-- line is the one the station's allowed ``ship`` of the same job names (handoff.floor_events).
CREATE TABLE certificates (
    ledger_idx bigint PRIMARY KEY,
    station    text NOT NULL,
    job        text NOT NULL,
    po         text,
    line       text,
    part       text,
    serials    text[] NOT NULL DEFAULT '{}',
    signed_by  text NOT NULL,
    at         timestamptz NOT NULL,
    node_seq   bigint NOT NULL,
    entry_hash bytea NOT NULL
);
CREATE INDEX certificates_line ON certificates (po, line);
CREATE INDEX certificates_job ON certificates (station, job);

CREATE SEQUENCE document_numbers;

-- An invoice, or a credit note against one (``credits``); never changed once issued.
CREATE TABLE documents (
    number     text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    client     text NOT NULL,
    po         text NOT NULL,
    credits    text REFERENCES documents (number),
    reason     text NOT NULL DEFAULT '',
    total      numeric(14, 2) NOT NULL,
    issued_by  text NOT NULL,
    issued_at  timestamptz NOT NULL,
    CHECK ((kind = 'credit_note') = (credits IS NOT NULL))
);
CREATE INDEX documents_client ON documents (client, issued_at);
CREATE INDEX documents_po ON documents (po);

-- Price and quantity come from the PO line; the C of C is the certificate it was invoiced against.
CREATE TABLE document_lines (
    number      text NOT NULL REFERENCES documents (number),
    po          text NOT NULL,
    line        text NOT NULL,
    part        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_price  numeric(14, 2) NOT NULL,
    amount      numeric(14, 2) NOT NULL,
    certificate bigint NOT NULL REFERENCES certificates (ledger_idx),
    PRIMARY KEY (number, line)
);
-- A line is invoiced once (credit notes are the way back).
CREATE UNIQUE INDEX invoiced_once ON document_lines (po, line) WHERE number LIKE 'INV-%';
