"""The node agent: what runs on each station and keeps it enforcing with every hub down.

It mirrors the hub's buckets into the station's own JetStream domain,
materialises them into a node-local store, verifies and activates contract
revisions, decides from the active revisions alone, keeps the station's
ledger and ships it to the hub when the hub is there.
"""
