"""InventoryHub (Vault hub; its purchasing side on Business: ``purchasing``): materials, lots and their
certificates, purchase requests, expiry."""
