-- Employment records: personal data, on the Vault only.
CREATE TABLE employment (
    employee_id text PRIMARY KEY,
    hired_on date NOT NULL,
    position text NOT NULL,
    stations text[] NOT NULL DEFAULT '{}',
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
