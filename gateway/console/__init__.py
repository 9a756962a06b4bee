"""The operators' console: a small web application over the gateway's own numbers.

Pages are rendered on the server from the same figures `/metrics` exports (scraped each minute and
kept on disk for 30 days), Kafka's consumer-group offsets and the dead-letter headers; nothing
personal is shown except the audit lookup, to the `auditeur` role only.
"""
