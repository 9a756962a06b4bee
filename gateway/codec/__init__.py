"""Codecs: bytes <-> plain data. Every third-party codec error is wrapped here."""
