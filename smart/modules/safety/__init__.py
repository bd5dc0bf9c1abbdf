"""PPE, the e-stop and hazard interlocks."""
