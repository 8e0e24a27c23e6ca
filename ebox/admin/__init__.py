"""The support staff's area: applications, senders and certificates, delivery status, audit.

Staff pages never show document content, titles or bodies.
"""
