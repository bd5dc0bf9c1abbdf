"""Installing SMART: the Helm chart's generated files and a station Pi's systemd units."""
