"""The contract's process rules at the point of operation: steps in order."""
