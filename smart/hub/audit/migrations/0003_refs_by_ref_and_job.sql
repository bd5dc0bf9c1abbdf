-- What a reverse search and the packet's section 9 read: for one thing named (a gauge, a person, a
-- lot, a procedure revision), the station jobs it touched, each with its first entry. With every
-- column they read in the index, both are an index-only scan already in (node, job, entry) order:
-- no heap visit and no sort of the ~40,000 rows one gauge has on a million-entry log (a packet
-- spent ~2 s of its time there; `smart bench audit`).
CREATE INDEX IF NOT EXISTS refs_ref_jobs ON refs (ref, node, job, ledger_idx) INCLUDE (at, method)
    WHERE job IS NOT NULL;
-- Each job listed names its PO line and serials: with the reference in the job's index (as a pattern,
-- for LIKE 'serial/%'), that is a few index rows per job instead of every reference the job has
-- (~135); the job's own lookups (node, job) use the same index, so the narrower one goes.
CREATE INDEX IF NOT EXISTS refs_job_ref ON refs (node, job, ref text_pattern_ops) WHERE job IS NOT NULL;
DROP INDEX IF EXISTS refs_node_job;
