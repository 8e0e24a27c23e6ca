"""The REST API v1 for institutions, beside the SOAP services (which stay as they are).

blueprint.py   the /api/v1 blueprint: every call authenticated (but the token and the document),
               counted against its sender's rate limit, its refusals audited
problems.py    every error as application/problem+json, with the SOAP Faults' business codes
auth.py        OAuth 2.0 client credentials with private_key_jwt (RFC 7523): the assertion is
               signed with the key of a certificate registered to the sender, as SOAP requests
tokens.py      the short-lived access tokens the token endpoint issues
openapi/       the OpenAPI 3.1 document, in fragments; served whole at /api/v1/openapi.json
messages.py    a sender's messages: status, search, evidence and proofs
"""
