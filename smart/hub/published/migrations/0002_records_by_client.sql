-- The client API finds a client's records by kind and client on every request (SMART-API on Business).
CREATE INDEX records_by_client ON records (kind, (body ->> 'client'), key);
