"""Traefik on Docker: the compatibility table, compose analysis, log scanning, routing checks."""
