"""Adapter for TAXII 2.1 servers: taxii2-client with timeouts, retries, TLS and credentials."""
