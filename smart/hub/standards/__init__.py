"""StandardsCentral (Vault hub): specs and procedures by revision, e-signed, sent once in force."""
