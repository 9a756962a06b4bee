"""Test kit of the SNE connector: sample canonical records and a simulator run as a child process.

Used by the connector's tests, the integration tests and the demo. Sample people are fictitious.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.normalise.codes import complete

from connectors.sne.config import SneConfig

__all__ = ["SimulatorProcess", "decision_cal", "decision_radiation", "demande", "sink_config"]


def _provenance(origine: str, reference: str | None, operation: str = "CREATION") -> dict[str, Any]:
    when = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    return {
        "origine": origine,
        "saisie": origine,
        "dateEvenement": when,
        "dateSaisie": when,
        "systemeSource": "cdc-json",
        "referenceSource": reference,
        "operation": operation,
    }


def demande(
    reference: str = "ERP-0001",
    *,
    nom: str = "Lefèvre",
    prenom: str = "Anaïs",
    naissance: date = date(1988, 3, 14),
    communes: tuple[str, ...] = ("35238",),
    num_unique: str | None = None,
    origine: str = "200000001",
    guichet: str = "G3501",
    **overrides: Any,
) -> dict[str, Any]:
    """A fr.gp.Demande (decoded form) that the SNE accepts; override fields to break it."""
    record: dict[str, Any] = {
        "numUnique": num_unique,
        "numGuichet": guichet,
        "dateCreationDemande": date(2026, 1, 15),
        "dateDernierRenouvellement": None,
        "statut": "ACTIVE",
        "radiation": None,
        "demandeur": {
            "civilite": "MADAME",
            "nom": nom,
            "nomPatronymique": None,
            "prenom": prenom,
            "dateNaissance": naissance,
            "nationalite": "FRANCAISE",
            "situationFamiliale": "CELIBATAIRE",
            "lienDemandeur": None,
            "telPortable": None,
            "mel": None,
            "adressePostale": None,
            "situationProfessionnelle": None,
            "revenuFiscal": None,
            "ressourcesRecues": [],
            "ressourcesSante": [],
            "ressourcesVersees": [],
        },
        "personneMorale": None,
        "cotitulaires": [],
        "personnesACharge": [],
        "personnesANaitre": None,
        "personnesEnGarde": [],
        "logementActuel": None,
        "logementRecherche": {
            "demandeElargie": False,
            "typesLogement": ["T2", "T3"],
            "communes": list(communes),
            "categorie": None,
            "loyerMaximum": None,
        },
        "motifs": ["TROP_CHER"],
        "motifsSante": [],
        "violencesFamiliales": False,
        "handicap": None,
        "dalo": None,
        "provenance": _provenance(origine, reference, "MODIFICATION" if num_unique else "CREATION"),
    }
    record.update(overrides)
    complete("fr.gp.Demande", record)  # every field, with its default (as a decoded record has)
    return record


def decision_cal(
    num_unique: str,
    *,
    decision: str = "ATTRIBUTION_RANG",
    event_id: str = "evt-cal-1",
    origine: str = "200000001",
    reference: str | None = "ERP-CAL-0001",
) -> dict[str, Any]:
    """A fr.gp.Decision DECISION_CAL (R441-3), ranked attribution of an RPLS dwelling by default."""
    record = decision_radiation(num_unique, event_id=event_id, origine=origine, reference=reference)
    record["typeEvenement"] = "DECISION_CAL"
    record["radiation"] = None
    record["decisionCal"] = {
        "dateCommission": date(2026, 11, 12),
        "commission": "CAL-AH-35-2026-11",
        "decision": decision,
        "rang": 2 if decision == "ATTRIBUTION_RANG" else None,
        "motifs": None
        if decision.startswith("ATTRIBUTION") and decision != "ATTRIBUTION_CONDITION_SUSPENSIVE"
        else "Ressources supérieures au plafond",
        "piecesManquantes": ["avis d'imposition"] if decision == "ATTRIBUTION_CONDITION_SUSPENSIVE" else [],
        "dateLimitePieces": date(2026, 11, 30) if decision == "ATTRIBUTION_CONDITION_SUSPENSIVE" else None,
        "logement": {
            "rpls": "3500012345",
            "referenceBailleur": None,
            "sirenBailleur": "200000001",
            "adresse": None,
            "commune": "35238",
            "typeLogement": "T3",
            "surface": 64.5,
            "loyer": Decimal("412.30"),
            "zus": "ZUSNON",
        },
    }
    complete("fr.gp.Decision", record)
    return record


def decision_radiation(
    num_unique: str,
    *,
    motif: str = "RADATT",
    event_id: str = "evt-rad-1",
    origine: str = "200000001",
    reference: str | None = "ERP-0001",
    attribution: bool = True,
    sous_motif: str | None = None,
) -> dict[str, Any]:
    """A fr.gp.Decision RADIATION (with the attribution data of the 2012 arrêté by default)."""
    record: dict[str, Any] = {
        "eventId": event_id,
        "numUnique": num_unique,
        "typeEvenement": "RADIATION",
        "provenance": _provenance(origine, reference),
    }
    for name in (
        "pieces",
        "designation",
        "inscriptionCal",
        "visite",
        "decisionCal",
        "refus",
        "bail",
        "decisionDalo",
        "label",
        "labelSante",
        "labelViolences",
        "avis",
        "orientation",
    ):
        record[name] = None
    record["radiation"] = {
        "motif": motif,
        "sousMotif": sous_motif,
        "dateRadiation": date(2026, 11, 20),
        "attribution": {
            "siren": "200000001",
            "dateSignatureBail": date(2026, 11, 18),
            "dejaLocataire": "NON",
            "logement": {
                "rpls": "3500012345",
                "referenceBailleur": None,
                "sirenBailleur": None,
                "adresse": None,
                "commune": "35238",
                "typeLogement": "T3",
                "surface": 64.5,
                "loyer": None,
                "zus": "ZUSNON",
            },
            "accordCollectif": "AUCUN",
            "daloPrioritaireUrgent": False,
            "contingent": "PPRIOR",
            "contingentDesignataire": "PPRIOR",
            "relogementAnru": None,
        }
        if attribution
        else None,
    }
    complete("fr.gp.Decision", record)
    return record


def sink_config(certs: Path, port: int, tmp: Path, **overrides: Any) -> SneConfig:
    values: dict[str, Any] = {
        "url": f"https://127.0.0.1:{port}/services/DemandeLogementImplService/",
        "client_cert": certs / "client.pem",
        "client_key": certs / "client.key",
        "ca_cert": certs / "ca.pem",
        "certificate_part": certs / "client.pem",
        "guichet": "G3501",
        "ledger_path": tmp / "ledger.sqlite",
        "rate_limit_per_second": 100.0,
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.5,
        "connect_timeout": 5.0,
        "read_timeout": 10.0,
    }
    values.update(overrides)
    return SneConfig.model_validate(values)


@dataclass
class SimulatorProcess:
    """`gateway sne simulate` as a child process, killable and restartable on the same port and state."""

    certs: Path
    state: Path
    port: int = 0
    proc: subprocess.Popen[str] | None = None

    def start(self) -> SimulatorProcess:
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            "sne",
            "simulate",
            "--port",
            str(self.port),
            "--certs",
            str(self.certs),
            "--state",
            str(self.state),
        ]
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
        )
        assert self.proc.stdout is not None  # noqa: S101 - PIPE requested
        line = self.proc.stdout.readline()
        if "listening on https://127.0.0.1:" not in line:
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split("/")[0])
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        return self

    @staticmethod
    def _drain(stream: Any) -> None:
        """Keep reading the child's output so that it never blocks on a full pipe."""
        for _ in stream:
            pass

    def _reap(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._reap()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reap()

    def _ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.pem"))
        ctx.load_cert_chain(str(self.certs / "client.pem"), str(self.certs / "client.key"))
        return ctx

    def control(self, **orders: Any) -> dict[str, Any]:
        url = f"https://127.0.0.1:{self.port}/control"
        data = json.dumps(orders).encode() if orders else None
        req = urllib.request.Request(url, data=data, method="POST" if orders else "GET")
        with urllib.request.urlopen(req, context=self._ctx(), timeout=10) as resp:  # noqa: S310
            out: dict[str, Any] = json.loads(resp.read())
            return out
