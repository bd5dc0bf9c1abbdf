"""Job records and the ledger to the hub, resumable after an outage."""
