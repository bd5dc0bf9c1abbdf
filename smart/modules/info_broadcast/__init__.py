"""The public status board: what the station is doing, with no personal data."""
