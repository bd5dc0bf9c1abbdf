"""Which revision of which spec applies, and its limits: procedures, furnace classes, matches."""
