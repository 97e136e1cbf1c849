"""The exchange's own TAXII 2.1 server: medallion on a durable, indexed SQLite backend.

`provisioning` lays out accounts, collections and ACLs; `sqlite_backend` stores what medallion
serves; `access` scopes it to the authenticated account; `app` builds the WSGI app; `runner`
serves it with waitress, in-process (`run_server`) or as a child process (`ServerProcess`).
"""
