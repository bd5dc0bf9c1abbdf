"""Station modules: one folder each with manifest.yaml and module.py (see framework)."""
