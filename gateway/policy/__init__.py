"""The access policy: R441-2-6 as data, record scope, per-recipient views, disclosure audit.

Pure core: nothing here touches Kafka. `gateway.flows.route` runs it on the canonical topics.
"""

from __future__ import annotations

from gateway.policy.model import Actor, Policy, PolicyStore, load_policy
from gateway.policy.router import AuditBatch, Delivery, Router, RouteResult
from gateway.policy.scope import ScopeState, update_state
from gateway.policy.views import View, build_view

__all__ = [
    "Actor",
    "AuditBatch",
    "Delivery",
    "Policy",
    "PolicyStore",
    "RouteResult",
    "Router",
    "ScopeState",
    "View",
    "build_view",
    "load_policy",
    "update_state",
]
