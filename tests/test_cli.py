"""The ``stdnews`` command as a user runs it: a real process, offline, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def stdnews(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=600)


def test_update_twice_then_bad_files(tmp_path: Path, corpus_copy: Path) -> None:
    home = str(tmp_path / "h")
    first = stdnews("--home", home, "index", "update", "--corpus", str(corpus_copy), "--quiet")
    assert first.returncode == 0, first.stderr
    assert "5 new" in first.stdout
    second = stdnews("--home", home, "index", "update", "--corpus", str(corpus_copy))
    assert second.returncode == 0
    assert "embedded 0 chunks" in second.stdout and "nothing to embed" in second.stdout
    assert "Loading weights" not in second.stderr  # a no-op update never loads the model

    (corpus_copy / "empty.txt").write_text("")
    (corpus_copy / "notes.odt").write_bytes(b"PK\x03\x04")  # .docx is read since e-mail support
    bad = stdnews("--home", home, "index", "update", "--corpus", str(corpus_copy), "--quiet")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and any("empty.txt: is empty" in e for e in errors)
    assert any("notes.odt" in e and "unsupported" in e for e in errors)
    assert "2 file(s) could not be indexed" in bad.stderr

    status = stdnews("--home", home, "index", "status", "--verify", "--corpus", str(corpus_copy))
    assert status.returncode == 0, status.stderr
    assert "5 bulletins, 14 articles, 73 chunks, 0 duplicate group(s)" in status.stdout and "agree" in status.stdout


def test_verify_reports_a_mismatch(tmp_path: Path, seed_index, embedder) -> None:
    import shutil

    from index.indexer import Index
    from index.settings import load_settings

    home = tmp_path / "copy"
    shutil.copytree(seed_index.settings.home, home)
    index = Index(load_settings(home=home, corpus=seed_index.settings.corpus), embedder=embedder)
    victim = sorted(index.store.ids())[0]
    index.store.delete([victim])
    out = stdnews("--home", str(home), "index", "status", "--verify")
    assert out.returncode == 1
    assert "Chroma lacks 1 chunk(s)" in out.stderr and victim in out.stderr


@pytest.mark.parametrize(
    ("question", "expect", "doc_id"),
    [
        ("Who convenes JTC 1/WG 11?", "Heng Qian", "jtc1-smart-cities-webconference"),
        ("When was ISO/IEC 30145-3 published?", "7 August 2020", "china-standardisation-news-2020"),
    ],
)
def test_ask_json_answers_with_citation(seed_home: Path, question: str, expect: str, doc_id: str) -> None:
    out = stdnews("--home", str(seed_home), "ask", question, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"question", "answer", "refused", "answerer", "citations", "passages", "timings_ms"}
    assert result["answerer"] == "extractive"
    assert result["refused"] is False and expect in result["answer"]
    assert result["citations"][0]["doc_id"] == doc_id
    assert set(result["citations"][0]) == {"n", "doc_id", "title", "publisher", "date", "chunk_id", "text", "also_in",
                                           "url"}
    assert "[1]" in result["answer"]
    assert {"retrieval", "answer"} <= set(result["timings_ms"])
    assert [p["rank"] for p in result["passages"]] == list(range(1, len(result["passages"]) + 1))


def test_ask_refuses_what_the_bulletins_do_not_cover(seed_home: Path) -> None:
    out = stdnews("--home", str(seed_home), "ask", "Which country won the 2022 FIFA World Cup?", "--json")
    result = json.loads(out.stdout)
    assert result["refused"] is True and result["citations"] == []
    assert "do not cover" in result["answer"] and result["passages"]


def test_bad_flags_are_one_line(seed_home: Path) -> None:
    out = stdnews("--home", str(seed_home), "ask", "anything", "--since", "last week")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "error: --since 'last week' is not a date; use YYYY-MM-DD"
    out = stdnews("--home", str(seed_home), "ask", "anything", "--as-of", "2021-02-30")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "error: --as-of '2021-02-30' is not a date; use YYYY-MM-DD (e.g. 2025-06-30)"


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    from assistant.cli import main

    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out[:300])
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err[-2000:]
    return err.strip()


def test_ask_bounds_question_k_and_history(seed_home: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(seed_home)]
    assert _one_line_error(capsys, [*home, "ask", "x" * 2001]) == (
        "error: The question is 2,001 characters long; the limit is 2,000: ask a shorter one.")
    for k in ("-5", "0", "51"):
        assert _one_line_error(capsys, [*home, "ask", "Who convenes JTC 1/WG 11?", "--json", "--k", k]) == (
            f"error: The number of passages must be a whole number from 1 to 50 (got {k}).")
    bad = tmp_path / "history.json"
    bad.write_text('[["a"]]')
    assert _one_line_error(capsys, [*home, "ask", "How many experts?", "--history", str(bad)]) == (
        "error: The history must be a list of [question, answer] pairs of text.")
    bad.write_text(json.dumps([["Who convenes JTC 1/WG 11?", "Heng Qian."]] * 21))
    assert _one_line_error(capsys, [*home, "ask", "How many experts?", "--history", str(bad)]) == (
        "error: The history holds 21 turns; the limit is 20: start a new conversation.")

    from assistant.cli import main

    assert main([*home, "ask", "smart cities", "--json", "--k", "50"]) == 0
    assert len(json.loads(capsys.readouterr().out)["passages"]) <= 50


@pytest.mark.parametrize("flag", ["--since", "--until"])
@pytest.mark.parametrize("value", ["2021-13-45", "2021-02-30", "2021-13", "2021-00", "0000", "2019-02-29"])
def test_impossible_dates_are_one_line(seed_home: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                       value: str) -> None:
    assert _one_line_error(capsys, ["--home", str(seed_home), "ask", "smart cities", flag, value]) == (
        f"error: {flag} '{value}' is not a date; use YYYY-MM-DD")


def test_real_partial_and_leap_dates_filter(seed_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main
    from assistant.retrieve import Filters

    assert Filters.parse(since="2020", until="2020-02").until == "2020-02"
    assert Filters.parse(since="2020-02-29").since == "2020-02-29"
    assert main(["--home", str(seed_home), "ask", "smart cities", "--json", "--since", "2020-02-29",
                 "--until", "2020-12"]) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    assert passages, "a real date filters; it is not refused"
