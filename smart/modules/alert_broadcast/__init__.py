"""Internal alerts: the stack light, the buzzer and alerts to the hub."""
