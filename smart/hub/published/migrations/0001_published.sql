-- What the Business hub received over its one-way feed: the latest body per kind and key.
CREATE TABLE records (
    kind text NOT NULL,
    key text NOT NULL,
    body jsonb NOT NULL,
    published_at timestamptz NOT NULL,
    feed_seq bigint NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX records_kind ON records (kind, published_at);
