"""The trust boundary: client security settings, principals and ACLs derived from the policy,
connection kits (docs/security.md)."""
