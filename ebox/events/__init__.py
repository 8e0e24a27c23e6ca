"""Events of senders\x27 messages: pulled over the REST API and pushed by webhooks."""
