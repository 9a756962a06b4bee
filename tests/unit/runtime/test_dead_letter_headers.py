"""Dead letters are read back from topics others can write to: damaged headers never raise."""

from __future__ import annotations

import pytest
from gateway.errors import Problem
from gateway.flows.dlq import DeadLetters, original_topic
from gateway.model.deadletter import ERR, problems_from_headers


def test_problems_round_trip() -> None:
    letter = DeadLetters().build(
        source_topic="gp.raw.cal-csv", partition=0, offset=1, key=None, original=b"x",
        problems=[Problem("a", "missing"), Problem("b", "not a number", "str")], message="m",
        stage="normalise",
    )  # fmt: skip
    expected = [Problem("a", "missing"), Problem("b", "not a number", "str")]
    assert problems_from_headers(letter.headers) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b'{"path": "a"}',  # an object, not a list
        b"[1, 2]",  # items that are not objects
        b'"text"',
        b"\xff\xfe",  # not UTF-8
        b"[" * 100_000,  # nested beyond the recursion limit
    ],
)
def test_damaged_problem_header_gives_no_problems(raw: bytes) -> None:
    assert problems_from_headers([("gp.errors.problems", raw)]) == []


def test_problem_fields_of_the_wrong_type_are_not_passed_on() -> None:
    raw = b'[{"path": 1, "reason": ["x"], "value": {"nom": "x"}}, "junk", {"path": "p", "reason": "r"}]'
    assert problems_from_headers([("gp.errors.problems", raw)]) == [Problem("", ""), Problem("p", "r")]


def test_original_topic_of_a_damaged_topic_header_falls_back_on_the_dlq_name() -> None:
    assert original_topic("gp.raw.sne-xml.dlq", [(ERR + "topic", b"\xff\xfe")]) == "gp.raw.sne-xml"


def test_dlq_show_prints_null_or_damaged_headers_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415
    from gateway.cli import dlq as dlq_cli  # noqa: PLC0415

    record = SimpleNamespace(
        topic="gp.raw.sne-xml.dlq", partition=0, offset=4, value=b"<a>secret</a>",
        headers=[(ERR + "stage", None), (ERR + "topic", b"\xff"), ("gp.errors.problems", b"{}")],
    )  # fmt: skip
    monkeypatch.setattr(dlq_cli, "_records", lambda *args: iter([record]))
    result = CliRunner().invoke(dlq_cli.dlq, ["show", "gp.raw.sne-xml.dlq"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "offset 4" in result.output and "stage: \n" in result.output
    assert "secret" not in result.output  # the payload only with --payload


def test_a_topic_header_cannot_redirect_a_replay() -> None:
    forged = [(ERR + "topic", b"gp.actor.200000001")]
    assert original_topic("gp.raw.sne-xml.dlq", forged) == "gp.raw.sne-xml"
    assert original_topic("legacy-dead-letters", forged) == "gp.actor.200000001"  # no .dlq name: header
