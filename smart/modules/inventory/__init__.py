"""Consumables, lots and shelf life."""
