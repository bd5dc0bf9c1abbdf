"""Outbound gate: is the job record complete and within limits before release."""
