-- A purchase request is for the Business hub's buyers: it goes there one way, on the PUBLISHED stream.
-- published_seq is the stream's sequence number it got; NULL until it is on the feed (then sent again).
ALTER TABLE purchase_requests ADD COLUMN published_seq bigint;
