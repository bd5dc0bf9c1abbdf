-- MaintenanceHub (Floor hub): the equipment register, calibrations with their certificates, furnace
-- surveys, maintenance orders, and the recall of jobs a bad instrument served. Runs with
-- search_path = maintenance.

-- One asset per row; version counts its changes and published_version what stations hold.
CREATE TABLE equipment (
    asset_id           text PRIMARY KEY,
    kind               text NOT NULL,
    station            text NOT NULL,
    serial             text NOT NULL,
    description        text NOT NULL DEFAULT '',
    furnace_class      text CHECK (furnace_class IN ('1', '2', '3', '4', '5', '6')),
    instrumentation    text CHECK (instrumentation IN ('A', 'B', 'C', 'D', 'D+', 'E')),
    furnace_type       text,
    thermocouple_metal text CHECK (thermocouple_metal IN ('base', 'noble')),
    grade              text,
    -- further attributes the contracts' rules read (a TAM panel's finish)
    attributes         jsonb NOT NULL DEFAULT '{}',
    qualified_ranges   jsonb NOT NULL DEFAULT '[]',
    usage_limits       jsonb NOT NULL DEFAULT '[]',
    -- next due dates (the calendar reads these; each set by the record that moved it)
    calibration_due    date,
    tus_due            date,
    sat_due            date,
    version            integer NOT NULL DEFAULT 1,
    published_version  integer NOT NULL DEFAULT 0,
    published_station  text,
    added_by           text NOT NULL,
    added_at           timestamptz NOT NULL,
    CHECK (kind <> 'furnace' OR (furnace_class IS NOT NULL AND instrumentation IS NOT NULL))
);
CREATE INDEX equipment_station ON equipment (station, asset_id);
CREATE INDEX equipment_calibration_due ON equipment (calibration_due);
CREATE INDEX equipment_tus_due ON equipment (tus_due);
CREATE INDEX equipment_sat_due ON equipment (sat_due);
CREATE INDEX equipment_unpublished ON equipment (asset_id) WHERE published_version < version;

-- A calibration and its certificate (ISO/IEC 17025 lab, traceable to a national standard).
CREATE TABLE calibrations (
    id                 bigserial PRIMARY KEY,
    asset_id           text NOT NULL REFERENCES equipment (asset_id),
    calibrated_at      timestamptz NOT NULL,
    lab                text NOT NULL CHECK (lab <> ''),
    certificate_number text NOT NULL CHECK (certificate_number <> ''),
    traceability       text NOT NULL CHECK (traceability <> ''),
    as_found           text NOT NULL DEFAULT '',
    as_left            text NOT NULL DEFAULT '',
    in_tolerance       boolean NOT NULL,
    next_due           date NOT NULL,
    certificate_name   text,
    certificate_type   text,
    certificate_sha256 text,
    certificate        bytea,
    recorded_by        text NOT NULL,
    recorded_at        timestamptz NOT NULL,
    CHECK (next_due > calibrated_at::date)
);
CREATE INDEX calibrations_asset ON calibrations (asset_id, calibrated_at);

-- TUS and SAT of a furnace (per qualified range where the contract asks for one in each).
CREATE TABLE surveys (
    id          bigserial PRIMARY KEY,
    asset_id    text NOT NULL REFERENCES equipment (asset_id),
    survey      text NOT NULL CHECK (survey IN ('TUS', 'SAT')),
    range_id    text,
    surveyed_at timestamptz NOT NULL,
    passed      boolean NOT NULL,
    next_due    date NOT NULL,
    report      text NOT NULL DEFAULT '',
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX surveys_asset ON surveys (asset_id, surveyed_at);

-- Maintenance orders: opened by a login, done by the person whose credential verified.
CREATE TABLE orders (
    id            bigserial PRIMARY KEY,
    asset_id      text NOT NULL REFERENCES equipment (asset_id),
    task          text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    opened_by     text NOT NULL,
    opened_at     timestamptz NOT NULL,
    done_at       timestamptz,
    done_by       text,
    credential_id text,
    entered_by    text,
    notes         text NOT NULL DEFAULT '',
    -- the usage counter's reset has reached the station's records bucket
    reset_published boolean NOT NULL DEFAULT false,
    CHECK ((done_at IS NULL) = (done_by IS NULL))
);
CREATE INDEX orders_open ON orders (asset_id) WHERE done_at IS NULL;

-- Recall (AS9100D 7.1.5.2): one impact review per job the instrument served since its last good
-- calibration; a disposition is one row of its own, never an edit.
CREATE TABLE reviews (
    id             bigserial PRIMARY KEY,
    calibration_id bigint NOT NULL REFERENCES calibrations (id),
    asset_id       text NOT NULL,
    job            text NOT NULL,
    station        text NOT NULL,
    first_use      timestamptz NOT NULL,
    last_use       timestamptz NOT NULL,
    opened_at      timestamptz NOT NULL,
    UNIQUE (calibration_id, job)
);
CREATE TABLE dispositions (
    review_id     bigint PRIMARY KEY REFERENCES reviews (id),
    disposition   text NOT NULL,
    notes         text NOT NULL DEFAULT '',
    by_badge      text NOT NULL,
    credential_id text NOT NULL,
    entered_by    text NOT NULL,
    at            timestamptz NOT NULL
);

-- The stations' uses of equipment, indexed from the hub log (module.decision entries that allowed
-- and named equipment): re-derivable from the log, append-only.
CREATE TABLE equipment_uses (
    ledger_idx bigint NOT NULL,
    equipment  text NOT NULL,
    station    text NOT NULL,
    job        text NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (ledger_idx, equipment)
);
CREATE INDEX equipment_uses_by_time ON equipment_uses (equipment, at) INCLUDE (job, station);

-- The stations' usage counts as their record.usage entries said (the lifetime total a reset keeps).
CREATE TABLE usage_seen (
    ledger_idx    bigint PRIMARY KEY,
    equipment     text NOT NULL,
    task          text NOT NULL,
    station       text NOT NULL,
    since_service double precision NOT NULL,
    total         double precision NOT NULL
);
CREATE INDEX usage_seen_latest ON usage_seen (equipment, task, ledger_idx DESC);
