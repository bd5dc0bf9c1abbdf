-- When and where each course is held (the courses themselves are smart/access/data/education.yaml).
CREATE TABLE sessions (
    session_id bigserial PRIMARY KEY,
    course text NOT NULL,
    starts_on date NOT NULL,
    place text NOT NULL,
    seats integer NOT NULL CHECK (seats > 0),
    added_by text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_course ON sessions (course, starts_on);
