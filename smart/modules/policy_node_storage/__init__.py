"""The node-local contract store: the revisions in force, their history, and why each decision was taken."""
