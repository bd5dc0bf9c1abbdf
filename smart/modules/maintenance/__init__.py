"""Equipment checks, calibration due, furnace surveys and usage counters."""
