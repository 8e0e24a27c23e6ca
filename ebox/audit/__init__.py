"""The tamper-evident audit log: every publication, access and staff action, hash-chained."""
