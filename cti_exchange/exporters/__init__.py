"""Exporters: indicators from the local store as files defensive tools ingest (see interface.py)."""
