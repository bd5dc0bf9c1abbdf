"""Feedback (Business hub): client feedback and complaints tied to POs; a complaint asks for a CAPA."""
