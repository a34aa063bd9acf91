"""Route modules of the reference service: health, devices, reports."""
