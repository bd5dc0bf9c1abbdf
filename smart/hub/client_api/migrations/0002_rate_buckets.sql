-- Each credential's token bucket, shared by every API process (replicas, workers): the rate limit
-- holds for the credential, not per process. UNLOGGED: a bucket is a few seconds of state that may
-- start full again after a crash, and a request's take must not wait for a WAL flush.
CREATE UNLOGGED TABLE rate_buckets (
    credential text PRIMARY KEY,   -- 'key:<id>' or 'oauth:<client_id>' (an OAuth client's tokens share one)
    tokens     double precision NOT NULL,
    at         timestamptz NOT NULL,
    allowed    boolean NOT NULL
);
