"""Registered mail: sealed evidence of what happened to a document, and proofs of delivery."""
