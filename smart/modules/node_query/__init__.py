"""Offline voice questions answered from the station's own store."""
