"""Sharing policy: what may leave the agency, to whom."""
