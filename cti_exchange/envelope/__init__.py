"""Envelopes: a STIX 2.1 bundle signed (JWS, EdDSA) then encrypted (JWE, ECDH-ES+A256KW, A256GCM)
to the partner agencies, carried in a STIX `artifact` that any TAXII 2.1 server stores unchanged.

The format is specified in docs/ENVELOPE.md.
"""
