"""Grafana for the shop: dashboards as code, generated into the Helm chart's provisioning files.

The dashboards read the hub's PostgreSQL (the ledger and the hub services' tables) as the read-only
role ``smart_grafana`` and the services' ``/metrics`` through Prometheus. Nothing here runs in a
hub or station process: ``smart grafana dashboards --write`` regenerates the chart's JSON.
"""
