"""Each evaluation metric on hand-made per-question records whose right value is
worked out by hand, plus the ``--min`` threshold rules."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from evals import metrics
from evals.cli import check_thresholds, gate, parse_thresholds
from index.errors import UserError


def rec(
    answerable: bool = True,
    expected: tuple[str, ...] = ("a",),
    retrieved: tuple[str, ...] = (),
    answer: str = "",
    refused: bool = False,
    citations: tuple[tuple[str, str], ...] = (),
    must: tuple[tuple[str, ...], ...] = (),
    total_ms: float = 100.0,
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A per-question record in the shape of ``results.json``."""
    return {
        "answerable": answerable,
        "expected_sources": list(expected) if answerable else [],
        "retrieved": [{"rank": i, "doc_id": d, "chunk_id": f"{d}#{i}"} for i, d in enumerate(retrieved, 1)],
        "answer": answer,
        "refused": refused,
        "citations": [{"n": i, "doc_id": d, "text": t} for i, (d, t) in enumerate(citations, 1)],
        "must_include": [list(g) for g in must],
        "timings_ms": {"total": total_ms},
        "tags": list(tags),
    }


# Four answerable questions: the expected source "a" first at rank 1, 3, 7, and never; one unanswerable.
RANKED = [
    rec(retrieved=("a", "x", "y")),
    rec(retrieved=("x", "y", "a", "a")),
    rec(retrieved=("x", "x", "x", "x", "x", "x", "a")),
    rec(retrieved=("x",) * 10 + ("a",)),  # rank 11: outside the top 10
    rec(answerable=False, retrieved=("a",)),  # never counted by the retrieval metrics
]


@pytest.mark.parametrize(("k", "want"), [(1, 1 / 4), (3, 2 / 4), (5, 2 / 4), (10, 3 / 4)])
def test_hit_at_k(k: int, want: float) -> None:
    assert metrics.hit_at(RANKED, k) == pytest.approx(want)
    assert metrics.compute(RANKED)[f"hit@{k}"] == pytest.approx(want)


def test_mrr_at_10() -> None:
    assert metrics.mrr_at_10(RANKED) == pytest.approx((1 + 1 / 3 + 1 / 7 + 0) / 4)


def test_ndcg_at_10_is_document_level() -> None:
    # One expected source: 1/log2(rank+1); a second passage of the same source adds nothing.
    assert metrics.ndcg_at_10(RANKED) == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(8) + 0) / 4)
    two = rec(expected=("a", "b"), retrieved=("a", "x", "b"))
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg(two) == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert metrics.ndcg(rec(expected=("a", "b"), retrieved=("a", "a", "b"))) == pytest.approx(metrics.ndcg(two))
    assert metrics.ndcg(rec(expected=("a", "b"), retrieved=("b", "a"))) == pytest.approx(1.0)
    assert metrics.ndcg(rec(expected=("a", "b"), retrieved=("x", "a"))) == pytest.approx((1 / math.log2(3)) / ideal)


def test_evidence_at_5_looks_for_the_answer_in_the_top_5_passages() -> None:
    def with_texts(*texts: str, must: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
        r = rec(retrieved=("a",) * len(texts), must=must)
        for p, t in zip(r["retrieved"], texts, strict=True):
            p["text"] = t
        return r

    records = [
        with_texts("Convenor Heng  Qian.", "Launched in 2015.", must=(("heng qian",), ("2015",))),  # across passages
        with_texts("x", "x", "x", "x", "x", "Heng Qian", must=(("Heng Qian",),)),  # only at rank 6
        with_texts("ANSI is the Secretariat.", must=(("American National Standards Institute", "ANSI"),)),
        with_texts("Beijing", must=(("2015",), ("Beijing",))),  # one group missing
    ]
    assert metrics.evidence_at_5(records) == pytest.approx(2 / 4)
    assert metrics.missing_in_passages(records[3]) == [["2015"]]
    assert metrics.evidence_at_5([rec(retrieved=("a",))]) is None  # records without passage text


def test_answer_accuracy_must_include_groups() -> None:
    records = [
        # every group matched, case-insensitive, white space folded, a marker inside the phrase ignored
        rec(answer="It is convened by HENG\n  qian [1] since 2015 [2].", must=(("Heng Qian",), ("2015",))),
        # one group matched through its second alternative
        rec(answer="ANSI is the Secretariat [1].", must=(("American National Standards Institute", "ANSI"),)),
        # one of two groups missing
        rec(answer="Beijing [1].", must=(("2015",), ("Beijing",))),
        # refused: wrong even though the string is there
        rec(answer="Not covered; Heng Qian is not mentioned.", refused=True, must=(("Heng Qian",),)),
        # typographic apostrophe folded to a plain one
        rec(answer="The IEC doesn’t have a single suite [1].", must=(("doesn't have a single suite",),)),
        rec(answerable=False, answer="anything", refused=False),  # not counted here
    ]
    assert metrics.answer_accuracy(records) == pytest.approx(3 / 5)
    assert metrics.missing_groups(records[2]) == [["2015"]]


def test_refusal_accuracy_and_false_refusal_rate() -> None:
    records = [
        rec(answerable=False, refused=True),
        rec(answerable=False, refused=True),
        rec(answerable=False, refused=False, answer="A guess [1]."),
        rec(refused=True),
        rec(refused=False, answer="x"),
        rec(refused=False, answer="y"),
        rec(refused=False, answer="z"),
    ]
    assert metrics.refusal_accuracy(records) == pytest.approx(2 / 3)
    assert metrics.false_refusal_rate(records) == pytest.approx(1 / 4)
    assert metrics.refusal_accuracy([rec()]) is None  # nothing to measure without unanswerable questions


def test_overall_accuracy() -> None:
    records = [
        rec(answer="Heng Qian [1].", must=(("Heng Qian",),)),  # right
        rec(answer="Someone [1].", must=(("Heng Qian",),)),  # wrong
        rec(answerable=False, refused=True),  # right
        rec(answerable=False, refused=False, answer="Made up [1]."),  # wrong
    ]
    assert metrics.overall_accuracy(records) == pytest.approx(2 / 4)


def test_citation_precision_is_pooled_over_answers_to_answerable_questions() -> None:
    records = [
        rec(expected=("a",), answer="x [1] y [2].", citations=(("a", ""), ("x", ""))),
        rec(expected=("a", "b"), answer="z [1].", citations=(("b", ""),)),
        rec(expected=("a",), refused=True, citations=()),  # a refusal cites nothing
        rec(answerable=False, answer="w [1].", citations=(("x", ""),)),  # counted by refusal accuracy instead
    ]
    assert metrics.citation_precision(records) == pytest.approx(2 / 3)
    assert metrics.citation_precision([rec(refused=True)]) is None


def test_supported_sentence_rate() -> None:
    passage = (
        "The convenor of the working group is Heng Qian, who will lead the web conference on April 14"
        " from 9:00 a.m. to 11 a.m. ET."
    )
    answer = (
        "Heng Qian will lead the web conference on April 14 [1]. "  # every content token in the passage
        "The sky over the conference is green [1]. "  # cited, but the passage does not say it
        "Heng Qian leads the conference. "  # no citation at all
        "The conference runs from 9:00 a.m. to 11 a.m. ET. [1]"  # marker after the stop; "a.m." is no boundary
    )
    checks = metrics.sentence_support(answer, [{"doc_id": "a", "text": passage}])
    assert [c["supported"] for c in checks] == [True, False, False, True]
    assert checks[3]["sentence"] == "The conference runs from 9:00 a.m. to 11 a.m. ET [1]."
    records = [
        rec(answer=answer, citations=(("a", passage),)),
        rec(answer="Heng Qian will lead [2].", citations=(("a", passage),)),  # [2] names no citation
        rec(answer="Heng Qian [1].", refused=True, citations=(("a", passage),)),  # refusals are left out
    ]
    assert metrics.supported_sentence_rate(records) == pytest.approx(2 / 5)


def test_support_threshold_on_a_paraphrase() -> None:
    passage = "More than 3,390 standards have been published by JTC1 to date."
    # A faithful paraphrase keeps most content tokens (only "total" is new): supported.
    ok = metrics.sentence_support("JTC1 has published 3,390 standards in total [1].", [{"text": passage}])
    # A claim about another body on another subject shares only the number, "publish" and "standard".
    bad = metrics.sentence_support("ISO has published 3,390 standards on smart cities [1].", [{"text": passage}])
    assert ok[0]["supported"] and ok[0]["overlap"] >= metrics.SUPPORT_MIN
    assert not bad[0]["supported"] and bad[0]["overlap"] < metrics.SUPPORT_MIN


def test_answer_length_leaves_out_markers_and_refusals() -> None:
    records = [
        rec(answer="One two three [1]."),  # 3 words
        rec(answer="One two three four five [1] [2]."),  # 5 words
        rec(answer="The indexed bulletins do not cover this question.", refused=True),
    ]
    assert metrics.answer_length(records) == pytest.approx(4.0)


def test_latency_percentiles_interpolate_linearly() -> None:
    records = [rec(total_ms=t) for t in (400, 100, 300, 200)]
    assert metrics.latency_p50(records) == pytest.approx(250.0)
    assert metrics.latency_p95(records) == pytest.approx(385.0)  # 300 + 0.85 * 100
    assert metrics.percentile([7.0], 95) == 7.0
    assert metrics.percentile([], 50) is None


def test_breakdown_by_tag() -> None:
    records = [
        rec(retrieved=("a",), answer="Heng Qian [1].", must=(("Heng Qian",),), tags=("name", "fact")),
        rec(retrieved=("x",), answer="No [1].", must=(("Heng Qian",),), tags=("name",)),
        rec(answerable=False, refused=True, tags=("unanswerable",)),
    ]
    tags = metrics.by_tag(records)
    assert tags["name"] == {"n": 2, "accuracy": 0.5, "hit@5": 0.5, "refused": 0.0}
    assert tags["fact"]["accuracy"] == 1.0
    assert tags["unanswerable"] == {"n": 1, "accuracy": 1.0, "hit@5": None, "refused": 1.0}


def test_every_metric_is_registered_and_documented() -> None:
    values = metrics.compute(RANKED)
    assert set(values) == set(metrics.METRICS)
    text = (Path(metrics.__file__).parent / "README.md").read_text(encoding="utf-8")
    for name, m in metrics.METRICS.items():
        assert m.doc, name
        assert f"`{name}`" in text, f"{name} is not documented in evals/README.md"


# thresholds ---------------------------------------------------------------------
def test_thresholds_no_worse_than() -> None:
    found = parse_thresholds(
        ["answer_accuracy=0.5", "false_refusal_rate=0.2", "latency_p95_ms<=900", "answer_length_words>=5"]
    )
    measured = {
        "answer_accuracy": 0.45,
        "false_refusal_rate": 0.1,
        "latency_p95_ms": 950.0,
        "answer_length_words": 12.0,
    }
    lines = check_thresholds(found, measured)
    assert lines == [
        "threshold failed: answer_accuracy = 0.450 < 0.5 (minimum)",
        "threshold failed: latency_p95_ms = 950 ms > 900 ms (maximum)",
    ]
    assert check_thresholds(parse_thresholds(["refusal_accuracy=0.5"]), {"refusal_accuracy": None}) == [
        "threshold failed: refusal_accuracy could not be measured on this set (nothing to count)"
    ]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("answer_accuracy", "expected METRIC=VALUE"),
        ("accuracy=0.5", "unknown metric 'accuracy'"),
        ("hit@5=high", "'high' is not a number"),
        ("answer_accuracy=55", "a share between 0 and 1"),
        ("answer_length_words=20", "neither better high nor low"),
    ],
)
def test_bad_thresholds_are_one_clear_error(spec: str, says: str) -> None:
    with pytest.raises(UserError, match=says):
        parse_thresholds([spec])


def test_gate_sits_just_under_the_measured_values() -> None:
    measured = {
        "hit@1": 0.9718,
        "hit@5": 1.0,
        "answer_accuracy": 0.676,
        "refusal_accuracy": 0.0,
        "false_refusal_rate": 0.0211,
        "evidence@5": None,
        "latency_p50_ms": 2000.0,
        "answer_length_words": 30.0,
    }
    flags = gate(measured)
    assert flags == (
        "--min hit@1=0.97 --min hit@5=0.99 --min answer_accuracy=0.67 --min refusal_accuracy=0.00"
        " --min false_refusal_rate=0.03"
    )
    lines = check_thresholds(parse_thresholds(flags.replace("--min ", "").split()), measured)
    assert lines == []  # the measured run itself passes its gate


def test_the_closing_as_of_note_is_no_sentence_to_check() -> None:
    answer = 'Boeing agreed to plead guilty [1]. (as of 2025-06-05; "recently" read as 2025-05-23..2025-06-05, those ' \
             'articles first)'
    assert metrics.answer_sentences(answer) == ["Boeing agreed to plead guilty [1]."]
    assert metrics.sentence_support(answer, [{"text": "Boeing agreed to plead guilty last year."}])[0]["supported"]
