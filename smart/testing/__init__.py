"""Pytest fixtures that start real, throwaway PostgreSQL and NATS servers on free loopback ports.

Registered as the ``smart`` pytest plugin (entry point in pyproject.toml), so
every test in the project, and of later work, gets them without imports.
"""
