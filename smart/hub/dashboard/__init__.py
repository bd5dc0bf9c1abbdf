"""The quality manager's dashboard: the hub's home page, every number from the records and linked to them.

:mod:`.index` follows the hub log for what no other service indexes (the stations'
checks and their readings, the jobs' states); :mod:`.panels` asks one question per
panel of those tables and of the services' own schemas (maintenance, qa,
inventory, SMART-ID's credentials, ComplianceCentral's refusals, the ledger's
checkpoints); :mod:`.web` renders them server-side with the chart data inline.
"""
