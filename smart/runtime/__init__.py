"""The embedded floor: PostgreSQL, a hub NATS with one leaf per station, and the hub web app.

``smart up`` and the test fixtures both build a :class:`floor.Floor` from the
same settings, so what the tests start is exactly what a user runs.
"""
