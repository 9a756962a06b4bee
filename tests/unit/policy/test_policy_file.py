"""Policy file validation: fail closed, every problem at once, reload keeps the running policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway.errors import ConfigError
from gateway.policy import PolicyStore, load_policy
from gateway.policy.fields import leaf_paths
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE


def _default() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    return data


def _write(tmp_path: Path, data: dict[str, Any], actors: str | None = None) -> Path:
    (tmp_path / "demo-actors.yaml").write_text(actors or DEFAULT_ACTORS_FILE.read_text(encoding="utf-8"))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_default_policy_classifies_every_leaf_of_both_schemas() -> None:
    policy = load_policy()
    for schema in ("fr.gp.Demande", "fr.gp.Decision"):
        assert set(policy.leaf_classes[schema]) == set(leaf_paths(schema))
    assert policy.leaf_classes["fr.gp.Demande"]["demandeur.telPortable"] == "contact"
    assert policy.leaf_classes["fr.gp.Demande"]["cotitulaires[].revenuFiscal.montantMoins1"] == "ressources"
    assert policy.leaf_classes["fr.gp.Demande"]["demandeur.ressourcesSante[].code"] == "sante_handicap"
    assert policy.leaf_classes["fr.gp.Decision"]["labelViolences.categorie"] == "violences"
    assert len(policy.actors) == 11  # the demo cast and one demo applicant
    assert policy.version.startswith("2026.1+")


def test_unclassified_field_stops_loading_and_names_the_path(tmp_path: Path) -> None:
    data = _default()
    del data["fields"]["fr.gp.Demande"]["handicap"]
    with pytest.raises(ConfigError) as err:
        load_policy(_write(tmp_path, data))
    paths = {p.path for p in err.value.problems}
    assert "fields.fr.gp.Demande.handicap.etat" in paths
    assert all(
        "fail closed" in p.reason for p in err.value.problems if p.path.startswith("fields.fr.gp.Demande.h")
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = _default()
    data["fields"]["fr.gp.Decision"]["nosuchfield"] = "traitement"
    data["fields"]["fr.gp.Decision"]["bail"] = "nosuchclass"
    data["roles"]["bailleur"]["grants"] = {**data["roles"]["bailleur"]["grants"], "unknown_class": True}
    data["roles"]["siao"]["derive"] = ["nosuchderivation"]
    data["protected_households"]["exempt_roles"] = ["bailleur", "pirate"]
    actors = "actors:\n  - {id: '200000001', role: nobody, name: X}\n  - {id: '2', role: bailleur, name: Y}\n"
    with pytest.raises(ConfigError) as err:
        load_policy(_write(tmp_path, data, actors))
    text = str(err.value)
    for expected in ("nosuchfield", "nosuchclass", "unknown_class", "nosuchderivation", "pirate"):
        assert expected in text
    # The actors file problems come with the others (structural errors first are enough to refuse it).
    assert "actors" in text


def test_extra_keys_and_bad_yaml_are_refused(tmp_path: Path) -> None:
    data = _default()
    data["rolez"] = {}
    with pytest.raises(ConfigError, match=r"rolez|Extra"):
        load_policy(_write(tmp_path, data))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="refused"):
        load_policy(bad)


def test_class_without_grant_is_withheld(tmp_path: Path) -> None:
    data = _default()
    del data["roles"]["collectivite"]["grants"]["contact"]
    policy = load_policy(_write(tmp_path, data))
    from gateway.policy import Router  # noqa: PLC0415
    from gateway.policy.samples import sample_demande  # noqa: PLC0415

    result = Router(policy).route("fr.gp.Demande", b"k", sample_demande(), None)
    delivery = result.for_actor("243500139")
    assert delivery is not None
    assert "contact" not in delivery.view.classes
    assert not any(p.startswith("demandeur.adressePostale") for p in delivery.view.paths)


def test_reload_keeps_running_policy_on_error_and_swaps_on_success(tmp_path: Path) -> None:
    data = _default()
    path = _write(tmp_path, data)
    store = PolicyStore(path)
    before = store.policy
    broken = dict(data, fields={"fr.gp.Demande": data["fields"]["fr.gp.Demande"]})  # Decision unclassified
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(ConfigError):
        store.reload()
    assert store.policy is before
    assert store.last_error is not None
    data["version"] = "2026.2"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    after = store.reload()
    assert store.policy is after
    assert after.version.startswith("2026.2+")
    assert after.version != before.version
