"""ComplianceCentral: refusals from every station and what was in force when, from the hub log."""
