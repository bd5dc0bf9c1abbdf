"""The Vault hub's SMART-ID services: people, devices, records, credentials and hub logins in PostgreSQL.

A driver of the ``smart.access`` pillar: it stores, signs with the hub's
SMART-ID key, records each grant and withdrawal on the ledger, and publishes
what stations need into the KV buckets they mirror.
"""
