"""InventoryHub (Business hub): materials, lots and their certificates, purchase requests, expiry."""
