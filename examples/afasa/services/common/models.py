"""Shared models as found: no Device model."""
