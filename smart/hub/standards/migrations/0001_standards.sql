-- StandardsCentral (Vault hub): specs by revision, procedures / technique sheets and their revisions,
-- each revision's e-signed approval, and which revision each station was given. search_path = standards.

CREATE TABLE spec_revisions (
    spec         text NOT NULL,
    revision     text NOT NULL,
    title        text NOT NULL,
    effective_on date NOT NULL,
    supersedes   text,
    added_by     text NOT NULL,
    added_at     timestamptz NOT NULL,
    PRIMARY KEY (spec, revision)
);

CREATE TABLE procedures (
    id       text PRIMARY KEY,
    method   text NOT NULL,
    title    text NOT NULL,
    stations text[] NOT NULL,
    added_by text NOT NULL,
    added_at timestamptz NOT NULL
);

-- A revision is a draft until a Level 3 of the method signs it; the signature columns are set once.
CREATE TABLE procedure_revisions (
    procedure      text NOT NULL REFERENCES procedures (id),
    revision       text NOT NULL,
    effective_on   date NOT NULL,
    supersedes     text,
    validated      boolean NOT NULL,
    spec           text,
    spec_revision  text,
    document       text NOT NULL DEFAULT '',
    drafted_by     text NOT NULL,
    drafted_at     timestamptz NOT NULL,
    approved_by    text,
    approved_at    timestamptz,
    signature      jsonb,
    approval_entry bigint,
    PRIMARY KEY (procedure, revision)
);

CREATE FUNCTION refuse_signed_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.approved_by IS NOT NULL THEN
        RAISE EXCEPTION 'procedure % rev % is approved and frozen', OLD.procedure, OLD.revision;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER procedure_revisions_frozen BEFORE UPDATE ON procedure_revisions
    FOR EACH ROW EXECUTE FUNCTION refuse_signed_change();

-- What each station holds: one row per publication (append-only), the latest per (procedure, station) counts.
CREATE TABLE publications (
    id          bigserial PRIMARY KEY,
    procedure   text NOT NULL,
    station     text NOT NULL,
    revision    text NOT NULL,
    kv_revision bigint NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX publications_procedure ON publications (procedure, station, id DESC);
