"""tb-adapter (stub as found: ubibot sync never saves devices)."""
