-- InventoryHub (Business hub): materials with their form and shelf life, lots with the supplier's
-- certificate, receipt, expiry and quantity, where each lot went, and purchase requests.
-- Runs with search_path = inventory.

CREATE TABLE materials (
    id                text PRIMARY KEY,
    form              text NOT NULL CHECK (form IN ('bulk', 'aerosol')),
    unit              text NOT NULL,
    shelf_life        text,
    in_use_checks     text[] NOT NULL,
    supplier          text NOT NULL,
    min_stock         double precision NOT NULL CHECK (min_stock >= 0),
    lead_time_days    double precision NOT NULL CHECK (lead_time_days > 0),
    pack_size         double precision NOT NULL DEFAULT 0 CHECK (pack_size >= 0),
    stations          text[] NOT NULL,
    added_by          text NOT NULL,
    added_at          timestamptz NOT NULL
);

CREATE TABLE lots (
    id            text PRIMARY KEY,
    material      text NOT NULL REFERENCES materials (id),
    supplier      text NOT NULL,
    certificate   text NOT NULL,
    received_on   date NOT NULL,
    expires_on    date NOT NULL,
    quantity      double precision NOT NULL CHECK (quantity > 0),
    unit          text NOT NULL,
    stations      text[] NOT NULL,
    withdrawn_on  date,
    withdrawn_why text,
    added_by      text NOT NULL,
    added_at      timestamptz NOT NULL,
    CHECK (expires_on > received_on)
);

-- A reorder signal a station raised (its ledger entry), turned into a request to a supplier.
CREATE TABLE purchase_requests (
    id           bigserial PRIMARY KEY,
    station      text NOT NULL,
    material     text NOT NULL,
    supplier     text NOT NULL,
    quantity     double precision NOT NULL CHECK (quantity > 0),
    unit         text NOT NULL,
    signal_idx   bigint NOT NULL UNIQUE,
    raised_at    timestamptz NOT NULL
);
