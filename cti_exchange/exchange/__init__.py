"""Exchanging envelopes with partners: sealing and opening with our keys and store, offline
(files) and over TAXII 2.1 (push, pull)."""
