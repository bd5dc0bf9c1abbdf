"""The embedded driver: the contracts reconcile core without Kubernetes (``smart apply``, ``smart up``).

It does what the operator does, through the same core, into the same KV
bucket and the same kind of ledger entries; the applied manifests and their
status live in a KV bucket of their own (``smart-manifests``) so ``smart
get`` can show them. Module workloads are the modules listed in each
station's bundle, which the node supervisor runs as processes.
"""
