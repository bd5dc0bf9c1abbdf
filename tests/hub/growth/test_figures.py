"""Growth counts what the Floor published: per client and process, turnaround, on time, yield."""

from __future__ import annotations

from datetime import UTC, datetime

from smart.hub.growth.figures import figures
from smart.hub.published.feed import PublishedRecord

AT = datetime(2026, 6, 1, tzinfo=UTC)


def status(
    job: str, *, released: str, handed: str, due: str | None, accepted: bool | None
) -> PublishedRecord:
    body = {
        "po": "PO-4411",
        "line": "1",
        "job": job,
        "client": "ACME",
        "process": "penetrant",
        "released_at": released,
        "handed_off_at": handed,
        "due": due,
        "accepted": accepted,
    }
    return PublishedRecord("po-status", job, body, AT)


def test_growth_figures_per_client_and_process_from_published_status() -> None:
    found = figures(
        [
            status(
                "J-1",
                released="2026-06-01T08:00:00Z",
                handed="2026-06-01T12:00:00Z",
                due="2026-06-02",
                accepted=True,
            ),
            status(
                "J-2",
                released="2026-06-01T08:00:00Z",
                handed="2026-06-03T08:00:00Z",
                due="2026-06-02",
                accepted=False,
            ),
            status(
                "J-3", released="2026-06-01T08:00:00Z", handed="2026-06-01T16:00:00Z", due=None, accepted=None
            ),
        ]
    )
    assert len(found) == 1
    acme = found[0]
    assert (acme.client, acme.process, acme.jobs) == ("ACME", "penetrant", 3)
    assert acme.turnaround_h == 8.0  # median of 4, 48 and 8 hours
    assert acme.on_time == 0.5 and acme.yield_ == 0.5  # J-3 names neither, and counts in neither
    assert figures([]) == []
