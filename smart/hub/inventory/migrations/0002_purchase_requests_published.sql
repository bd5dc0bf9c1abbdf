-- A purchase request is for the Business hub's buyers: it goes there one way, on the PUBLISHED stream.
-- published_seq is the stream's sequence number it got; NULL until it is on the feed (then sent again).
ALTER TABLE purchase_requests ADD COLUMN published_seq bigint;

-- The app role may UPDATE the table only to note that: once, and nothing else of the request.
CREATE FUNCTION purchase_request_only_published() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.published_seq IS NOT NULL
       OR (NEW.id, NEW.station, NEW.material, NEW.supplier, NEW.quantity, NEW.unit, NEW.signal_idx, NEW.raised_at)
          IS DISTINCT FROM
          (OLD.id, OLD.station, OLD.material, OLD.supplier, OLD.quantity, OLD.unit, OLD.signal_idx, OLD.raised_at)
    THEN
        RAISE EXCEPTION 'purchase request %: only its place on the Business feed may be noted, once', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER purchase_requests_only_published BEFORE UPDATE ON purchase_requests
    FOR EACH ROW EXECUTE FUNCTION purchase_request_only_published();
