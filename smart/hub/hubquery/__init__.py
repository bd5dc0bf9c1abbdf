"""HubQuery: "Hey SMART" at a hub, answered from that hub's own data only."""
