"""Standards-aware retrieval: identifiers in any spelling, dates, near-duplicate
news, what's new, and the corpus watcher, on the seeds plus bulletins made for
the test (a reworded copy of a seed article; an article with three spellings)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.identifiers import find_identifiers, find_orgs
from index.indexer import Index

DATA = Path(__file__).parent / "data" / "standards"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("ISO/IEC 30145-3:2020", "30145-3"), ("ISO IEC 30145 part 3", "30145-3"), ("30145-3", "30145-3"),
        ("GB/T 35273-2020", "35273"), ("ITU-T Y.4900", "Y.4900"), ("Y.4900", "Y.4900"),
        ("IEC 61850-7-420", "61850-7-420"), ("ISO 37120", "37120"), ("JTC 1/WG 11", "JTC 1/WG 11"),
        ("JTC1/WG11", "JTC 1/WG 11"), ("JTC 1 Working Group 11", "JTC 1/WG 11"), ("SAC/TC28", "TC 28"),
        ("TC260", "TC 260"), ("SG16", "SG 16"), ("ITU-T Study Group 16", "SG 16"), ("SDG 11", "SDG 11"),
        ("SDG11", "SDG 11"),
    ],
)
def test_identifier_spellings_normalise_to_one_key(text: str, key: str) -> None:
    assert key in {i.key for i in find_identifiers(f"The bulletin mentions {text} twice.")}


def test_no_identifiers_in_plain_numbers_and_year_spans() -> None:
    assert find_identifiers("In 2019-2020 over 1 800 standards and 160 experts, 4,500 in total.") == []
    assert find_orgs("CEN and CENELEC met ANSI and the Standardization Administration of China") == [
        "SAC", "ANSI", "CEN-CENELEC"]


@pytest.fixture(scope="module")
def standards_index(tmp_path_factory: pytest.TempPathFactory, embedder):  # noqa: ANN001, ANN201
    from index.settings import load_settings
    from tests.conftest import SEED_CORPUS

    root = tmp_path_factory.mktemp("standards")
    corpus = root / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    for f in DATA.iterdir():
        if f.name == "catalog-extra.toml":
            with open(corpus / "catalog.toml", "a") as fh:
                fh.write("\n" + f.read_text())
        else:
            shutil.copy(f, corpus / f.name)
    index = Index(load_settings(home=root / "home", corpus=corpus), embedder=embedder)
    assert index.update(progress=False).ok
    return index


def test_chunks_carry_identifiers_and_orgs(standards_index: Index) -> None:
    (chunk,) = standards_index.db.chunks_of("smart-city-kpi-roundup")
    for key in ("30145-3", "37120", "Y.4900", "61850-7-420"):
        assert f"|{key}|" in chunk["std_keys"]
    assert "ISO/IEC 30145-3" in chunk["standards"] and "|ISO|" in chunk["orgs"]
    assert chunk["date"] == "2021-03-02"


def test_reworded_copy_is_one_duplicate_group(standards_index: Index) -> None:
    import json

    from index.read import groups_file

    kept = json.loads(groups_file(standards_index.db.path).read_text())  # the update computed them for readers
    assert kept.get("version") == standards_index.db.pairs_version() and len(kept["groups"]) == 1
    groups = standards_index.duplicate_groups()
    assert len(groups) == 1
    assert {(g["doc_id"], g["title"][:20]) for g in groups[0]} == {
        ("cesi-smart-city-ict-framework", "Smart City ICT Refer"),
        ("china-standardisation-news-2020", "China-led Internatio"),
    }


def test_status_summary_counts_what_status_lists(standards_index: Index) -> None:
    """``index status`` without --all: the counts of the full status, the newest bulletins, the groups cut short."""
    from index import status

    full = standards_index.status()
    short = standards_index.summary(listed=2)
    for key in ("bulletins", "articles", "chunks", "fingerprint", "last_update"):
        assert short[key] == full[key], key
    assert short["bulletins"] == len(full["documents"]) > 2 and short["more"]["documents"] == short["bulletins"] - 2
    newest = sorted(full["documents"], key=lambda b: (-b["indexed_at"], b["doc_id"]))[:2]
    assert short["documents"] == newest
    assert short["duplicate_groups"] == len(full["duplicates"]) == 1 and short["more"]["duplicates"] == 0
    assert short["group_sizes"] == [2]
    assert [sorted((d["doc_id"], d["title"]) for d in g) for g in short["duplicates"]] == [
        sorted((d["doc_id"], d["title"]) for d in g) for g in full["duplicates"]]
    one = status.MEMBERS
    try:
        status.MEMBERS = 1
        cut = standards_index.summary()
    finally:
        status.MEMBERS = one
    assert len(cut["duplicates"][0]) == 1 and cut["group_sizes"] == [2]


def test_duplicate_story_shown_once_with_where_else(standards_index: Index) -> None:
    from assistant.pipeline import Assistant

    bot = Assistant(standards_index.settings, index=standards_index)
    result = bot.ask("When was the Smart City ICT Reference Framework part 3 published?")
    docs = [p.doc_id for p in result.passages]
    assert not ({"cesi-smart-city-ict-framework", "china-standardisation-news-2020"} <= set(
        d for d, p in zip(docs, result.passages, strict=True) if "30145" in p.text)), "story shown twice"
    assert "7 August 2020" in result.answer
    top = result.citations[0]
    assert top.also_in and top.also_in[0]["doc_id"] in {"cesi-smart-city-ict-framework",
                                                        "china-standardisation-news-2020"}
    assert result.answer.endswith(f"(as of {result.as_of})") and result.as_of == max(
        c.date for c in result.citations if c.date)


@pytest.mark.parametrize("spelling", ["ISO IEC 30145 part 3", "30145-3", "ISO/IEC 30145-3:2020"])
def test_any_spelling_filters_and_ranks_first(standards_index: Index, spelling: str) -> None:
    from assistant.retrieve import Filters, Retriever

    retriever = Retriever(standards_index, standards_index.settings)
    only = retriever.search("smart city framework", k=5, filters=Filters.parse(standards=[spelling]))
    assert only and all("|30145-3|" in standards_index.db.get_chunks([p.chunk_id])[p.chunk_id]["std_keys"]
                        for p in only)
    ranked = retriever.search(f"What do bulletins say about {spelling}?", k=5)
    assert "30145" in ranked[0].text


def test_latest_question_prefers_newer_articles(standards_index: Index) -> None:
    from assistant.retrieve import Retriever

    retriever = Retriever(standards_index, standards_index.settings)
    plain = retriever.search("smart city standards news", k=5)
    latest = retriever.search("latest smart city standards news", k=5)
    assert max(p.date for p in latest[:2]) >= max(p.date for p in plain[:2])
    assert latest[0].date == "2021-03-02"


def test_latest_before_as_of_is_the_newest_before_that_day(standards_index: Index) -> None:
    from assistant.retrieve import Filters, Retriever

    retriever = Retriever(standards_index, standards_index.settings)
    latest = retriever.search("latest smart city standards news", k=5, filters=Filters.parse(as_of="2020-12-31"))
    dated = [p.date for p in latest if p.date]
    assert dated and all(d <= "2020-12-31" for d in dated)  # the 2021-03-02 round-up is not evidence yet
    assert latest[0].date == max(dated)


def test_a_window_ranks_its_articles_first_and_drops_nothing(standards_index: Index) -> None:
    from assistant.retrieve import Filters, Retriever

    retriever = Retriever(standards_index, standards_index.settings)
    question = "What smart city standards news came out this week?"
    week = retriever.search(question, k=5, filters=Filters.parse(as_of="2021-03-05"))
    assert week[0].date == "2021-03-02" and week[0].in_window  # 2021-02-27..2021-03-05
    assert not any(p.in_window for p in week[1:]) and len(week) == 5  # the rest still there, after it
    undated_question = retriever.search("What smart city standards news came out?", k=5,
                                        filters=Filters.parse(as_of="2021-03-05"))
    assert not any(p.in_window for p in undated_question)  # no time words: no date bias
    from assistant.pipeline import Assistant

    r = Assistant(standards_index.settings, index=standards_index).ask(
        "What did Standards Watch report this week about city indicators?", filters=Filters.parse(as_of="2021-03-05"))
    assert not r.refused and r.answer.endswith('"this week" read as 2021-02-27..2021-03-05, those articles first)')


def test_whats_new_and_watch(tmp_path: Path, corpus_copy: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "assistant", "--home", str(home), "--corpus", str(corpus_copy)]
    watch = subprocess.Popen([*cmd, "index", "watch", "--interval", "0.5"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            out = subprocess.run([*cmd, "whats-new", "--json"], capture_output=True, text=True, env=env)
            if '"SAC/TC28 sets up' in out.stdout:
                break
            time.sleep(1)
        else:
            pytest.fail("the watcher never indexed the seed corpus")
        shutil.copy(DATA / "smart-city-kpi-roundup.md", corpus_copy)
        while time.monotonic() < deadline:
            out = subprocess.run([*cmd, "whats-new"], capture_output=True, text=True, env=env)
            if "Smart city indicators" in out.stdout:
                break
            time.sleep(1)
        else:
            pytest.fail("the watcher never picked up the new bulletin")
        assert out.stdout.splitlines()[0].startswith("2021-03-02  Smart city indicators: three standards to watch")
        assert "SAC/TC28" not in out.stdout  # only what the last update added
        since = subprocess.run([*cmd, "whats-new", "--since", "2000-01-01"], capture_output=True, text=True, env=env)
        assert "SAC/TC28 sets up" in since.stdout and "Smart city indicators" in since.stdout
    finally:
        watch.terminate()
        log = watch.communicate(timeout=60)[0]
    assert "watching" in log and "+ 2021-03-02  Smart city indicators" in log and "stopped watching" in log
