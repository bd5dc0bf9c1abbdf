"""The hub's web app: status page and JSON API for people, probes and scripts."""
