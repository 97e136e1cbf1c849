"""STIX 2.1 knowledge: TLP markings, IOC types, patterns, object building and validation."""
