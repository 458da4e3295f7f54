"""``index status --verify`` covers the corpus (files not indexed, and why; files changed since
they were indexed; an interrupted update), and a chat server never serves a half-written
index: after a SIGKILL mid-update, ``stdnews chat --no-watch`` repairs it at start as
``index update`` does (issue 16, item 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from index.indexer import Index
from tests.conftest import small_corpus
from tests.servers import free_port, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "corpus"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
       "GRADIO_ANALYTICS_ENABLED": "False"}
# A bulletin of several articles, so that a crash after the first write batch leaves it half indexed.
TOPICS = ["water metering", "street lighting", "parking sensors", "waste collection", "air quality", "flood alerts"]
KPI = "\n\n".join(
    f"ITU-T approves Y.49{i:02d} on smart city {topic}\n\n"
    f"ITU-T Study Group 20 approved Recommendation ITU-T Y.49{i:02d} on {topic} in smart sustainable cities. "
    f"The Recommendation was edited by Zofia Wrzesniewska, rapporteur for {topic}, and sets out how cities "
    f"measure {topic} with open data. " * 3
    for i, topic in enumerate(TOPICS))


def stdnews(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=600, cwd=ROOT)




def verify(capsys: pytest.CaptureFixture[str], *args: str, kind: str = "mismatch") -> tuple[int, list[str], str]:
    """``stdnews [args] index status --verify``: exit code, its ``kind:`` lines, all of stderr."""
    capsys.readouterr()
    code = main([*args, "index", "status", "--verify"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.startswith(f"{kind}: ")], err


def test_verify_reports_files_not_indexed_and_changed(make_settings, embedder, tmp_path: Path,  # noqa: ANN001
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    corpus = small_corpus(tmp_path)
    (corpus / "empty.txt").write_text("")
    index = Index(make_settings(corpus), embedder=embedder)
    report = index.update(progress=False)
    assert [Path(p).name for p, _ in report.failed] == ["empty.txt"]  # the update logged why
    (corpus / "late.txt").write_text(KPI)  # arrived after the update
    with open(corpus / "iec-smart-cities.txt", "a") as fh:  # edited after the update
        fh.write("\nIEC adds a new smart city reference architecture.\n")
    home = str(index.settings.home)

    for args in (("--home", home, "--corpus", str(corpus)), ("--home", home)):  # the corpus it was built from
        code, lines, err = verify(capsys, *args)
        assert code == 1, err
        assert len(lines) == 2, err
        assert any("late.txt" in m and "not indexed" in m for m in lines), lines
        assert any("iec-smart-cities.txt" in m and "changed" in m and "since it was indexed" in m
                   for m in lines), lines
        refused = [line for line in err.splitlines() if line.startswith("refused: ")]  # and why: as logged
        assert len(refused) == 1 and "empty.txt" in refused[0] and "not indexed: is empty" in refused[0], err
        assert "Traceback" not in err

    assert not index.update(progress=False).ok  # empty.txt is refused again; everything else is indexed
    code, lines, err = verify(capsys, "--home", home)
    assert (code, lines) == (0, []), err  # the index holds what updates can index: verify passes
    assert "refused: " in err and "empty.txt" in err
    (corpus / "empty.txt").write_text("ITU news\n\nITU-T approved Y.4999 on smart city digital twins.\n")
    code, lines, err = verify(capsys, "--home", home)  # edited since it was refused: an update would index it
    assert code == 1 and len(lines) == 1 and "empty.txt" in lines[0] and "not indexed" in lines[0], err
    assert index.update(progress=False).ok
    code, lines, err = verify(capsys, "--home", home)
    assert (code, lines) == (0, []) and "refused" not in err, err


@pytest.mark.slow
def test_verify_fails_after_an_update_killed_before_any_write(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    corpus = small_corpus(tmp_path)
    home = str(tmp_path / "home")
    args = ("--home", home, "index", "update", "--corpus", str(corpus), "--quiet")
    assert stdnews(*args).returncode == 0
    (corpus / "kpi.txt").write_text(KPI)
    crashed = stdnews(*args, env={**ENV, "STDNEWS_CRASH_AT": "embedding"})
    assert crashed.returncode == -9, crashed.stderr
    code, lines, err = verify(capsys, "--home", home)
    assert code == 1, err
    assert any("kpi.txt" in m and "not indexed" in m for m in lines), err
    assert any("interrupted" in m and "stdnews index update" in m for m in lines), err
    assert stdnews(*args).returncode == 0
    code, lines, err = verify(capsys, "--home", home)
    assert (code, lines) == (0, []), err


@pytest.mark.slow
def test_no_watch_chat_after_sigkill_mid_write_serves_no_half_bulletin(tmp_path: Path) -> None:
    from gradio_client import Client

    from index.settings import load_settings

    corpus = small_corpus(tmp_path)
    home = tmp_path / "home"
    args = ("--home", str(home), "index", "update", "--corpus", str(corpus), "--quiet")
    assert stdnews(*args).returncode == 0
    (corpus / "itu-kpi.txt").write_text(KPI)
    crashed = stdnews(*args, env={**ENV, "STDNEWS_CRASH_AT": "record-manager", "STDNEWS_INDEX_BATCH_SIZE": "3"})
    assert crashed.returncode == -9, crashed.stderr
    index = Index(load_settings(home=home, corpus=corpus))
    assert index.db.bulletin("itu-kpi") is None and index.db.chunk_ids("itu-kpi"), "half written"
    index.db.close()

    port = free_port()
    log = tmp_path / "chat.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "chat", "--home", str(home), "--corpus",
                                 str(corpus), "--host", "127.0.0.1", "--port", str(port), "--no-watch"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=ENV, start_new_session=True)
        try:
            try:
                wait_http(f"http://127.0.0.1:{port}/", timeout=300, proc=proc)
            except RuntimeError:  # it refused to serve: one line that says how to repair
                errors = [line for line in log.read_text().splitlines() if line.startswith("error: ")]
                assert len(errors) == 1 and "stdnews index update" in errors[0], log.read_text()
                assert "Traceback" not in log.read_text()
                return
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            answer = client.predict("Who edited ITU-T Y.4902 on parking sensors?", api_name="/ask")
            cited = {p["doc_id"] for p in answer["passages"]}
            listed = "<code>itu-kpi</code>" in client.predict(api_name="/library")[3]
            assert ("itu-kpi" in cited) == listed, (cited, listed)  # served whole or not at all
            assert listed, "repaired at start as `index update` does"
            assert "Zofia Wrzesniewska" in answer["answer"], answer["answer"]
        finally:
            stop(proc)
    text = log.read_text()
    assert "interrupted" in text and "Traceback" not in text, text
    index = Index(load_settings(home=home, corpus=corpus))
    check = index.verify_corpus()
    assert index.verify() == [] and check.mismatches == check.refused == []


def test_chat_refuses_a_half_written_index_it_cannot_repair(make_settings, embedder, tmp_path: Path,  # noqa: ANN001
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    corpus = small_corpus(tmp_path)
    index = Index(make_settings(corpus), embedder=embedder)
    assert index.update(progress=False).ok and index.interrupted() is None
    (index.settings.home / "update.lock").write_text("999999999")  # what a killed update leaves
    (index.settings.home / "bm25.dirty").touch()
    shutil.rmtree(corpus)  # and the corpus it read is gone: nothing to repair from
    capsys.readouterr()
    code = main(["--home", str(index.settings.home), "--corpus", str(tmp_path / "gone"), "chat", "--no-watch",
                 "--port", str(free_port())])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1, err
    assert "interrupted update" in errors[0] and "run 'stdnews index update'" in errors[0], err
    assert "Traceback" not in err and "stdnews chat:" not in err  # never served
