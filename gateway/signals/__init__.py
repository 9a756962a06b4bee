"""Follow-up signals of the gestion partagée (issue 14): pure processors over canonical records.

`rules` (the rules file, per territory), `state` (compact per-application and per-dwelling state,
the due-date index), `records` (the Signal builder, the Context), `core` (apply: the application
side), `timed` (tick / next_due: the time-driven rules), `logement` (apply_logement: the dwelling
side of ATTRIBUE_NON_LOGE), `engine` (in-memory runner), `replay` (the offline command's core),
`samples` (records for tests and benches). The worker is `gateway/flows/signals.py`.
Reference: docs/signals.md.
"""

from gateway.signals.core import SIGNAL, Context, Step, apply, apply_logement, next_due, tick
from gateway.signals.engine import Engine
from gateway.signals.rules import SIGNAL_TYPES, Rules, load_rules

__all__ = [
    "SIGNAL",
    "SIGNAL_TYPES",
    "Context",
    "Engine",
    "Rules",
    "Step",
    "apply",
    "apply_logement",
    "load_rules",
    "next_due",
    "tick",
]
