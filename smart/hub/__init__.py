"""Hub services: the web app, and (in later work) the Vault, Business and Floor hub modules."""
