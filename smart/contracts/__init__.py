"""The contracts pillar (the Governors): typed rules as data, compiled, signed and evaluated.

- :mod:`~smart.contracts.rules` and :mod:`~smart.contracts.models`: the SmartContract and Station
  resources and the vocabulary of rule kinds (pydantic, the edge).
- :mod:`~smart.contracts.manifests`: YAML in, errors with file, line and path out.
- :mod:`~smart.contracts.semantics`: what the schema cannot check.
- :mod:`~smart.contracts.bundle`: per-station canonical bundles, revision = SHA-256, hub signature.
- :mod:`~smart.contracts.engine`: a bundle compiled into closures; ``evaluate(event, facts)``.
- :mod:`~smart.contracts.reconcile`: the driver-free reconcile core the operator and the embedded
  driver both call; :mod:`~smart.contracts.distribution`: the KV bucket stations mirror.
- :mod:`~smart.contracts.crds`: the CRDs in ``crds/``, generated from the models.

This package never imports a driver (operator, runtime, web, cli).
"""
