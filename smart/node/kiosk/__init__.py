"""The station's kiosk: the operator's pages on the station's own screen (see :mod:`.app`)."""
