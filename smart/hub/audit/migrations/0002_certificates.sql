-- The C of C AuditCentral printed when a station's allowed shipment of a PO line reached the hub:
-- once per shipment entry (its global index is the key), the PDF with its QR code and the proof
-- bundle the code names, proved against a cosigned checkpoint. The app role may only add and read:
-- a printed certificate is never changed (a corrected one would be another shipment's).
CREATE TABLE certificates (
    ledger_idx bigint PRIMARY KEY,
    station    text NOT NULL,
    job        text NOT NULL,
    po         text NOT NULL,
    line       text NOT NULL,
    client     text,
    qr_text    text NOT NULL,
    proof_size bigint NOT NULL,
    pdf        bytea NOT NULL,
    pdf_sha256 text NOT NULL,
    bundle     bytea NOT NULL,
    printed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_po_line ON certificates (po, line);
