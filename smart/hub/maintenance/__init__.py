"""MaintenanceHub (Floor hub): equipment, calibrations, surveys, maintenance orders, due calendar, recall."""
