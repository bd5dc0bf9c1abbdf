"""Pay (Business hub): invoices from shipped, certified PO lines, credit notes for returns, their PDFs."""
