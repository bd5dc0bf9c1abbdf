"""The kopf operator: one driver of the contracts reconcile core, on Kubernetes.

``smart operator run`` (or ``kopf run -m smart.operator.handlers``) watches
SmartContract and Station resources; for each contract it calls
:mod:`smart.contracts.reconcile` (validate, compile, sign, KV, ledger),
keeps one DaemonSet per station module, and reports status conditions and
Kubernetes Events. It lives in ``smart/operator`` because a top-level
``operator`` package would shadow Python's own ``operator`` module.
"""
