"""Retention (issue 16): nominative data erased one year after radiation, everywhere, and audited.

`protocol` is the contract every processor shares (store names, headers, the erasure tombstone);
the clock core and the worker flow are `gateway/retention/clock.py` and `gateway/flows/retention.py`.
Reference: docs/retention.md.
"""
