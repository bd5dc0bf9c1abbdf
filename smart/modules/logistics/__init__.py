"""Shipping and receiving; only on a station labelled for shipping."""
