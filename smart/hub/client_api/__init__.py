"""SMART-API (Business hub): a client's own POs, C of Cs, proof bundles and invoices, by API key or OAuth."""
