"""Codes, part and traveler validation and PPE checks from camera frames."""
