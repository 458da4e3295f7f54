"""The evaluation runner end to end: a small set with its own corpus folder run
through the real ``stdnews eval run`` parser and command (model shared with the
session), its outputs, history and thresholds, then ``eval compare``; plus the
set loader's errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.cli import build_parser, main, settings_from
from evals import history, metrics
from evals.cli import run_command
from evals.run import load_set
from index.errors import UserError

MINI = Path(__file__).resolve().parent / "data" / "mini"


def _run(argv: list[str], embedder) -> int:  # noqa: ANN001
    """``stdnews ARGV`` in-process with the session's model (``main`` would load its own)."""
    args = build_parser().parse_args(argv)
    return run_command(args, settings_from(args), embedder=embedder)


def test_small_set_with_its_own_corpus_end_to_end(tmp_path: Path, embedder, capsys) -> None:  # noqa: ANN001
    home, out = tmp_path / "home", tmp_path / "out"
    rc = _run(
        [
            "--home",
            str(home),
            "eval",
            "run",
            "--set",
            str(MINI / "set.jsonl"),
            "--corpus",
            str(MINI / "corpus"),
            "--out",
            str(out),
            "--min",
            "hit@5=0.8",
            "--min",
            "latency_p50_ms=0.001",
        ],
        embedder,
    )
    err = capsys.readouterr().err
    # The impossible latency ceiling fails the run with one line; the reachable hit@5 floor does not.
    failing = [line for line in err.splitlines() if line.startswith("threshold failed")]
    assert rc == 1 and len(failing) == 1
    assert failing[0].startswith("threshold failed: latency_p50_ms = ") and failing[0].endswith("(maximum)")

    for name in ("results.json", "meta.json", "report.md", "metrics.png"):
        assert (out / name).is_file(), name
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    doc = json.loads((out / "results.json").read_text())
    questions = doc["questions"]
    assert [q["id"] for q in questions] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    for q in questions:
        assert q["retrieved"] and all({"rank", "doc_id", "chunk_id", "score", "text"} <= set(p) for p in q["retrieved"])
        assert isinstance(q["answer"], str) and q["answer"]
        assert {"retrieval", "answer", "total", "retrieval_top10"} <= set(q["timings_ms"])
        assert {"correct", "first_hit_rank", "missing", "citation_hits", "sentences"} <= set(q["verdicts"])
        assert all(c["text"] for c in q["citations"])
        assert (q["failure"] is None) == q["verdicts"]["correct"]
        assert q["as_of"] is None  # the mini set gives no date: asked today
    # The invented bulletins are easy to find; the unanswerable question is refused.
    assert doc["metrics"]["hit@5"] == 1.0
    m6 = questions[-1]
    assert m6["refused"] and m6["citations"] == [] and m6["verdicts"]["correct"]
    # The follow-up was retrieved with the subject carried over from its history.
    assert "Harbour Data Forum" in questions[3]["query"]
    # Stored metrics are exactly the metric functions over the stored records.
    assert doc["metrics"] == pytest.approx(metrics.compute(questions))
    assert doc["counts"] == {
        "questions": 6,
        "answerable": 5,
        "unanswerable": 1,
        "correct": sum(q["verdicts"]["correct"] for q in questions),
    }

    meta = doc["meta"]
    assert meta["fresh_index"] and len(meta["index_fingerprint"]) == 12
    assert meta["set"]["sha256"] == history.sha256_file(MINI / "set.jsonl")
    assert meta["settings"]["k"] == 5 and meta["settings"]["llm_api_key"] == "***"
    assert "commit" in meta["git"]

    # Recorded in the history of the data directory; the temporary index is gone.
    runs = history.list_runs(home)
    assert runs == [meta["run_id"]]
    assert json.loads((history.runs_dir(home) / runs[0] / "meta.json").read_text())["metrics"] == doc["metrics"]
    assert not (home / "index.sqlite").exists()

    report = (out / "report.md").read_text()
    for name in metrics.METRICS:
        assert f"| {name} |" in report
    assert "## By tag" in report and "| unanswerable | 1 |" in report
    assert f"## Failures ({6 - doc['counts']['correct']})" in report
    assert "![metrics](metrics.png)" in report

    # compare: the run against a copy in which the unanswerable question was answered.
    changed = tmp_path / "changed"
    shutil.copytree(out, changed)
    edited = json.loads((changed / "results.json").read_text())
    edited["questions"][-1].update(
        refused=False, answer="Argentina won it [1].", citations=[{"n": 1, "doc_id": "harbour-data-forum", "text": "x"}]
    )
    (changed / "results.json").write_text(json.dumps(edited))
    assert main(["--home", str(home), "eval", "compare", "latest", str(changed)]) == 0
    shown = capsys.readouterr().out
    assert "refusal_accuracy" in shown and "-1.000" in shown and "worse" in shown
    assert "flipped: 1 now wrong, 0 now right" in shown
    assert "- m6: Who won the 2022 FIFA World Cup?" in shown and "answered instead of refusing" in shown


def test_without_corpus_it_updates_and_uses_the_data_directory(make_settings, embedder, capsys) -> None:  # noqa: ANN001
    settings = make_settings(MINI / "corpus")
    args = build_parser().parse_args(
        ["--home", str(settings.home), "eval", "run", "--set", str(MINI / "set.jsonl"), "--min", "refusal_accuracy=1.0"]
    )
    assert not hasattr(args, "corpus")
    assert run_command(args, settings, embedder=embedder) == 0
    assert "all 1 threshold(s) met" in capsys.readouterr().err
    assert (settings.home / "index.sqlite").is_file()  # the index stays for the next run
    doc = history.load_run(history.resolve_run(settings.home, "latest"))
    assert doc["meta"]["fresh_index"] is False and doc["metrics"]["refusal_accuracy"] == 1.0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--min", "answer_accuracy"], "error: --min 'answer_accuracy': expected METRIC=VALUE"),
        (["--min", "recall=0.5"], "error: --min 'recall=0.5': unknown metric 'recall'"),
    ],
)
def test_bad_threshold_is_one_error_line_before_any_work(tmp_path: Path, capsys, extra: list[str], says: str) -> None:  # noqa: ANN001
    rc = main(["--home", str(tmp_path / "home"), "eval", "run", "--set", str(MINI / "set.jsonl"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(says)
    assert not (tmp_path / "home" / "index.sqlite").exists()


def test_compare_of_an_unknown_run_is_one_error_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["--home", str(tmp_path), "eval", "compare", "nope", "latest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no run 'nope'")


def test_the_seed_set_loads() -> None:
    questions = load_set(Path(__file__).resolve().parent.parent / "evals" / "sets" / "seed.jsonl")
    assert len(questions) >= 80 and len({q.id for q in questions}) == len(questions)
    assert any(not q.answerable for q in questions) and any(q.history for q in questions)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("{not json", ":1: not valid JSON"),
        ('{"id": "a", "question": "Q?"}', ":1: missing field 'answerable'"),
        ('{"id": "a", "question": "Q?", "answerable": "yes"}', ":1: field 'answerable' must be a bool"),
        ('{"id": "a", "question": "Q?", "answerable": true}', ":1: an answerable question needs 'expected_sources'"),
        ('{"id": "a", "question": "Q?", "answerable": false, "must_include": ["x"]}', "list of non-empty lists"),
        (
            '{"id": "a", "question": "Q?", "answerable": false}\n{"id": "a", "question": "R?", "answerable": false}',
            ":2: duplicate id 'a'",
        ),
        (
            '{"id": "a", "question": "Q?", "answerable": false, "as_of": "2021-02-30"}',
            ":1: field 'as_of' must be a date YYYY-MM-DD, not '2021-02-30'",
        ),
        (
            '{"id": "a", "question": "Q?", "answerable": false, "as_of": "last week"}',
            ":1: field 'as_of' must be a date YYYY-MM-DD",
        ),
        ('{"id": "a", "question": "Q?", "answerable": false, "as_of": 20210203}', ":1: field 'as_of' must be a str"),
    ],
)
def test_a_malformed_set_names_file_line_and_field(tmp_path: Path, line: str, says: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UserError, match=says.replace("(", r"\(").replace("[", r"\[")):
        load_set(path)


def test_as_of_is_read_from_the_set_and_other_fields_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "dated.jsonl"
    path.write_text(
        '{"id": "a", "question": "What happened this week?", "answerable": false, "as_of": "2020-10-20",'
        ' "choices": ["x", "y"], "answer_choice": 1}\n'
        '{"id": "b", "question": "Q?", "answerable": false}\n'
    )
    dated, undated = load_set(path)
    assert dated.as_of == "2020-10-20" and undated.as_of is None


def test_a_question_asked_before_a_bulletin_does_not_see_it(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    from evals.run import run_set
    from index.settings import load_settings

    path = tmp_path / "dated.jsonl"
    line = ('{{"id": "{id}", "question": "When was NSB 4410 published?", "answerable": true, "as_of": "{as_of}",'
            ' "expected_sources": ["nsb-street-lighting"], "must_include": [["3 March 2023"]]}}')
    path.write_text(line.format(id="before", as_of="2023-01-01") + "\n" + line.format(id="after", as_of="2023-12-31"))
    settings = load_settings(home=tmp_path / "home", corpus=MINI / "corpus")
    before, after = run_set(settings, path, corpus=MINI / "corpus", embedder=embedder, progress=False).records
    assert (before["as_of"], after["as_of"]) == ("2023-01-01", "2023-12-31")
    assert before["retrieved"] == [], "every mini bulletin is dated 2023-03-03 or later"
    assert before["refused"] and not before["verdicts"]["correct"]
    assert after["retrieved"][0]["doc_id"] == "nsb-street-lighting" and after["verdicts"]["correct"]
