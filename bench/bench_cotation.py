"""Cotation CPU cost (prints figures, asserts nothing).

1. CEL runtimes compared on the same expressions and the same application (µs per evaluation, the
   bindings built once per application, the expressions compiled once): the runtime the gateway uses
   (cel-expr-python) and, when installed, common-expression-language (Rust) and cel-python (pure
   Python): `.venv/bin/pip install common-expression-language cel-python` to compare.
2. The gateway's scoring of one application with the 60-criterion grid bench/data/grille-60.yaml
   (goal <= 200 µs per application), and the record it publishes.

Run: .venv/bin/python bench/bench_cotation.py [--rounds N]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from gateway.cotation.expr import to_cel
from gateway.cotation.grid import load_grid
from gateway.cotation.score import score, to_record
from gateway.policy.model import load_policy
from gateway.testing.samples import canonical_samples

GRID = Path(__file__).parent / "data" / "grille-60.yaml"
NOW = date(2026, 6, 1)


def _cpu(fn: Callable[[], Any], rounds: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(rounds):
        fn()
    return (time.process_time() - start) / rounds


def _demandes() -> list[dict[str, Any]]:
    return [r for s, r in canonical_samples() if s == "fr.gp.Demande" and r.get("demandeur")]


def runtimes(rounds: int) -> None:
    """The `demande` expressions of the grid (those every runtime reads alike) on each runtime."""
    raw = yaml.safe_load(GRID.read_text(encoding="utf-8"))
    exprs = [c["condition"] for c in raw["criteria"] if c["condition"].startswith(("demande.", '"'))][:20]
    demande = to_cel(_demandes()[0])
    print(f"CEL runtimes: {len(exprs)} conditions of the grid over one application (µs per evaluation)")
    from cel_expr_python import cel as cxx  # noqa: PLC0415

    env = cxx.NewEnv(variables={"demande": cxx.Type.DYN})
    progs = [env.compile(e) for e in exprs]

    def run_cxx() -> None:
        act = env.Activation({"demande": demande})
        for p in progs:
            p.eval(act).value()

    print(f"  cel-expr-python (cel-cpp, used)        {_cpu(run_cxx, rounds) / len(exprs) * 1e6:8.2f}")
    if importlib.util.find_spec("cel") is not None:
        import cel  # noqa: PLC0415

        rprogs = [cel.compile(e) for e in exprs]

        def run_rust() -> None:
            ctx = cel.Context({"demande": demande})
            for p in rprogs:
                p.execute(ctx)

        print(f"  common-expression-language (Rust)     {_cpu(run_rust, rounds) / len(exprs) * 1e6:8.2f}")
    else:
        print("  common-expression-language (Rust)     not installed")
    if importlib.util.find_spec("celpy") is not None:
        import celpy  # noqa: PLC0415

        cenv = celpy.Environment()
        ok = []
        for e in exprs:
            try:
                prog = cenv.program(cenv.compile(e))
                prog.evaluate({"demande": celpy.json_to_cel(demande)})
                ok.append(prog)
            except Exception:  # noqa: BLE001, S112 - celpy refuses `map != null`: skip those
                continue

        def run_py() -> None:
            act = {"demande": celpy.json_to_cel(demande)}
            for p in ok:
                p.evaluate(act)

        cost = _cpu(run_py, max(rounds // 50, 5)) / len(ok) * 1e6
        print(f"  cel-python (pure Python)              {cost:8.2f}   ({len(ok)} of {len(exprs)} evaluate)")
    else:
        print("  cel-python (pure Python)              not installed")


def scoring(rounds: int) -> None:
    policy = load_policy()
    start = time.process_time()
    grid = load_grid(GRID, policy)
    load_ms = (time.process_time() - start) * 1e3
    print(f"grid {GRID.name}: {len(grid.criteria)} criteria checked and compiled in {load_ms:.0f} ms CPU")
    demandes = _demandes()

    def run_score() -> None:
        for d in demandes:
            score(grid, d, NOW)

    def run_record() -> None:
        for d in demandes:
            to_record(grid, score(grid, d, NOW), NOW)

    per = _cpu(run_score, rounds) / len(demandes) * 1e6
    print(
        f"  score (60 criteria), per application   {per:8.1f} µs CPU   (goal <= 200; {len(demandes)} samples)"
    )
    per_rec = _cpu(run_record, rounds) / len(demandes) * 1e6
    print(f"  score + fr.gp.Cotation record          {per_rec:8.1f} µs CPU")
    print(f"  2.7 M applications re-scored           {per_rec * 2.7e6 / 1e6 / 60:8.1f} min CPU on one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    runtimes(args.rounds)
    scoring(args.rounds)


if __name__ == "__main__":
    main()
