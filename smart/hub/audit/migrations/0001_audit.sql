-- AuditCentral (Vault hub): an index of the hub log by what each entry names, so an auditor's
-- packet and a reverse search read a few rows instead of the whole log. Re-derivable from the log,
-- append-only for the app role. Runs with search_path = audit.

-- One row per (entry, thing it names): a station's job, person, equipment, lot, procedure, PO line
-- or serial in a decision; a record a station received; a hub service's change of a PO or procedure.
CREATE TABLE refs (
    ledger_idx bigint NOT NULL,
    node       text NOT NULL,
    node_seq   bigint NOT NULL,
    kind       text NOT NULL,
    -- what is named, as '<kind>/<id>': 'job/J-1', 'person/op-7', 'equipment/UV-METER-1',
    -- 'lot/PEN-2291', 'procedure/PT-PROC-12@D', 'po-line/PO-4411/1', 'serial/SN-002',
    -- 'record/person/op-7', 'record/check/uv-a-intensity', 'contract/penetrant', 'block/pt-1',
    -- 'po/PO-4411' (hub services)
    ref        text NOT NULL,
    -- the station's job the entry belongs to (null for records and hub changes)
    job        text,
    -- when the work happened (the event's time; the entry's time when it has none)
    at         timestamptz NOT NULL,
    -- the method of the procedure the decision ran (PT, MT, …), where known
    method     text,
    PRIMARY KEY (ref, ledger_idx)
);
CREATE INDEX refs_ledger_idx ON refs (ledger_idx);
CREATE INDEX refs_node_job ON refs (node, job) WHERE job IS NOT NULL;
CREATE INDEX refs_ref_at ON refs (ref, at);
-- what a station held before a job: its records by kind (LIKE 'record/check/%'), newest first
CREATE INDEX refs_node_ref ON refs (node, ref text_pattern_ops, node_seq);
