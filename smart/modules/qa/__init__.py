"""Measurements and furnace dwell against their limits, with SPC."""
