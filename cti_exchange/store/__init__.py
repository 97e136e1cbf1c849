"""The local store: one SQLite file (WAL) with everything an agency received, sent and decided."""
