"""Input readers: CSV, plain-text IOC lists, STIX 2.x JSON and MISP event JSON.

One small `Reader` interface (`interface.py`) and one module per format; `detect.py` picks the
reader from a file's content. Readers only read: what the values mean is decided by the core in
`cti_exchange.stix`.
"""
