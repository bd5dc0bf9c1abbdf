"""Education (Vault hub): courses and their sessions; a completion grants its credential through SMART-ID."""
