"""The audit trail: a hash-chained, signed record of what the agency shared, received and decided."""
