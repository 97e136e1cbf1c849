"""cti-exchange: signed, encrypted STIX 2.1 exchange over TAXII 2.1 between cybersecurity agencies."""

__version__ = "0.1.0"
