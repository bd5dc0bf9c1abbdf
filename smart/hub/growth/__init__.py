"""Growth (Business hub): throughput, turnaround, on-time delivery and yield from the published PO status."""
