"""Inbound gate: may this person, with this part and PO, run this process on this equipment now."""
