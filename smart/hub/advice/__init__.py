"""AI Central on the hub: advice found in the shop's own records, never a decision (see :mod:`.findings`)."""
