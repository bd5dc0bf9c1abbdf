"""QACentral (Vault hub): every station's NCRs, dispositions signed at the hub, CAPA, first-pass yield."""
