-- Travelers (Floor hub): approved procedure revisions, route templates per part or process, and each
-- PO line's traveler by revision. Runs with search_path = travelers.

-- A procedure revision a Level 3 approved; the newest approval of a procedure is its current revision.
CREATE TABLE procedures (
    id          text NOT NULL,
    revision    text NOT NULL,
    method      text NOT NULL,
    approved_by text NOT NULL,
    validated   boolean NOT NULL,
    approved_at timestamptz NOT NULL,
    added_by    text NOT NULL,
    PRIMARY KEY (id, revision)
);

CREATE TABLE templates (
    name       text PRIMARY KEY,
    part       text,
    process    text,
    operations jsonb NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (part IS NOT NULL OR process IS NOT NULL)
);

CREATE TABLE travelers (
    po          text NOT NULL,
    line        text NOT NULL,
    revision    integer NOT NULL CHECK (revision > 0),
    status      text NOT NULL CHECK (status IN ('draft', 'released')),
    reason      text NOT NULL,
    template    text,
    operations  jsonb NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    released_by text,
    released_at timestamptz,
    PRIMARY KEY (po, line, revision)
);

-- A released traveler is frozen: a guardrail beside the code (tamper evidence is the ledger's).
CREATE FUNCTION refuse_released_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'released' THEN
        RAISE EXCEPTION 'traveler %/% revision % is released and frozen', OLD.po, OLD.line, OLD.revision;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER travelers_frozen BEFORE UPDATE ON travelers
    FOR EACH ROW EXECUTE FUNCTION refuse_released_change();
