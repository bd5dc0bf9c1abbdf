"""The published subset: what the Vault and the Floor let Business see, one way (``smart.bus.hub_roles``)."""
