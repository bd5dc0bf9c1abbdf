"""Shared test configuration; the real-server fixtures come from the ``smart`` pytest plugin."""
