"""Names never collide silently: adding a file named like a bulletin already in the corpus (any
extension) is refused unless replacing is asked for (then the old file is backed up and its catalog
entry replaced); two files with one doc_id in the corpus are one clear error and the rest still
update; an upload is all-or-nothing per file and keeps its metadata under the sanitised name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from index.indexer import Index

NEW_TEXT = ("IEC publishes a new smart cities white paper\n\n"
            "The IEC white paper on urban data platforms was published by the Systems Committee on Smart Cities. "
            "It was edited by Maria Rossi.\n")
OTHER = "jtc1-smart-cities-webconference"


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, embedder, make_settings, corpus_copy: Path):  # noqa: ANN001, ANN201
    """``stdnews`` in this process over an indexed copy of the seed corpus, with the session's model."""
    from assistant.cli import main

    monkeypatch.setattr("index.indexer.make_embedder", lambda *a, **k: embedder)
    settings = make_settings(corpus_copy)
    index = Index(settings, embedder=embedder)
    assert index.update(progress=False).ok

    def run(*args: str) -> int:
        return main([*args, "--home", str(settings.home), "--corpus", str(corpus_copy)])

    run.index = index  # type: ignore[attr-defined]
    run.corpus = corpus_copy  # type: ignore[attr-defined]
    return run


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_index_add_refuses_an_existing_name_whatever_its_extension(cli, tmp_path: Path,  # noqa: ANN001
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    corpus, index = cli.corpus, cli.index
    before, old = index.fingerprint(), (corpus / "iec-smart-cities.txt").read_bytes()
    for name in ("iec-smart-cities.txt", "iec-smart-cities.md", "iec-smart-cities.html"):
        src = tmp_path / name
        src.write_text(f"<p>{NEW_TEXT}</p>" if name.endswith(".html") else NEW_TEXT)
        assert cli("index", "add", "--quiet", str(src)) == 1
        (line,) = _errors(capsys.readouterr().err)
        assert name in line and "'iec-smart-cities'" in line and "--replace" in line, line
    assert sorted(p.name for p in corpus.glob("iec-smart-cities*")) == ["iec-smart-cities.txt"]
    assert (corpus / "iec-smart-cities.txt").read_bytes() == old
    assert index.fingerprint() == before
    assert not (index.settings.home / "backups").exists()


def test_index_add_replace_backs_up_the_old_file_and_drops_its_curated_entry(  # noqa: ANN001
        cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, index = cli.corpus, cli.index
    old = (corpus / "iec-smart-cities.txt").read_text()
    assert read_catalog_entry(corpus, "iec-smart-cities")["publisher"] == "IEC"
    src = tmp_path / "iec-smart-cities.md"  # another extension: the .txt must leave the corpus
    src.write_text(NEW_TEXT)
    assert cli("index", "add", "--replace", "--quiet", str(src)) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert not _errors(err) and "1 changed" in out, (out, err)
    assert sorted(p.name for p in corpus.glob("iec-smart-cities*")) == ["iec-smart-cities.md"]
    (backup,) = (index.settings.home / "backups").glob("iec-smart-cities-*.txt")
    assert backup.read_text() == old
    assert read_catalog_entry(corpus, "iec-smart-cities") is None, "the curated title described the old text"
    assert list((index.settings.home / "backups").glob("iec-smart-cities-*.catalog.toml")), "the old entry is kept"
    doc = index.db.bulletin("iec-smart-cities")
    assert doc["title"] == "IEC publishes a new smart cities white paper" and doc["publisher"] is None
    assert "Maria Rossi" in " ".join(c["text"] for c in index.db.chunks_of("iec-smart-cities"))
    assert index.verify() == []
    assert cli("index", "update", "--quiet") == 0, "no name clash is left behind"


def test_two_files_with_one_doc_id_are_one_error_and_the_rest_updates(  # noqa: ANN001
        cli, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, index = cli.corpus, cli.index
    kept = {c["id"]: c["text"] for c in index.db.chunks_of("iso-standards-for-smart-cities")}
    (corpus / "iso-standards-for-smart-cities.md").write_text(NEW_TEXT)
    other = corpus / f"{OTHER}.txt"
    other.write_text(other.read_text().replace("over 160 registered experts", "over 170 registered experts"))
    for attempt in range(2):
        assert cli("index", "update", "--quiet") == 1
        out, err = capsys.readouterr()
        (line,) = _errors(err)
        assert "iso-standards-for-smart-cities.md" in line and "iso-standards-for-smart-cities.txt" in line, line
        assert "keeps" in line and "rename or remove" in line, line
        assert ("1 changed" if attempt == 0 else "0 changed") in out, out
    assert {c["id"]: c["text"] for c in index.db.chunks_of("iso-standards-for-smart-cities")} == kept
    assert index.db.bulletin("iso-standards-for-smart-cities")["path"].endswith(".txt")
    assert any("170 registered experts" in c["text"] for c in index.db.chunks_of(OTHER))
    assert index.verify() == []
    (corpus / "iso-standards-for-smart-cities.md").unlink()
    assert cli("index", "update", "--quiet") == 0
    assert not _errors(capsys.readouterr().err)


def test_a_clash_never_indexed_indexes_neither(make_settings, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "x.txt").write_text(NEW_TEXT)
    (corpus / "x.md").write_text("# Another bulletin\n\nSomething else entirely happened.\n")
    (corpus / "y.txt").write_text(NEW_TEXT.replace("Maria Rossi", "Ann Lee"))
    index = Index(make_settings(corpus), embedder=embedder)
    report = index.update(progress=False)
    assert report.added_docs == ["y"]
    ((path, why),) = report.failed
    assert "x.md" in f"{path} {why}" and "x.txt" in f"{path} {why}" and "neither" in why, (path, why)
    assert index.db.bulletin("x") is None


def test_an_upload_is_all_or_nothing_per_file(make_settings, corpus_copy: Path, tmp_path: Path,  # noqa: ANN001
                                              embedder) -> None:
    from assistant.library import add_bulletins

    index = Index(make_settings(corpus_copy), embedder=embedder)
    assert index.update(progress=False).ok
    catalog_before = (corpus_copy / "catalog.toml").read_text()
    good, empty, clash, odd = (tmp_path / n for n in ("good-news.txt", "empty.txt", "iec-smart-cities.txt",
                                                      "notes.docx"))
    good.write_text(NEW_TEXT.replace("IEC", "ITU"))
    empty.write_text("  \n")
    clash.write_text(NEW_TEXT)
    odd.write_bytes(b"PK\x03\x04")
    report, notes = add_bulletins(index, [good, empty, clash, odd], publisher="ITU", date="2026-01-02",
                                  progress=False)
    assert report.added_docs == ["good-news"] and not report.changed_docs
    assert sorted(Path(p).name for p, _ in report.failed) == ["empty.txt", "iec-smart-cities.txt", "notes.docx"]
    assert not (corpus_copy / "empty.txt").exists() and not (corpus_copy / "notes.docx").exists()
    catalog = tomllib.loads((corpus_copy / "catalog.toml").read_text())
    assert catalog["good-news"] == {"publisher": "ITU", "date": "2026-01-02"}
    assert "empty" not in catalog and "notes" not in catalog
    assert catalog["iec-smart-cities"]["publisher"] == "IEC", "a refused file changes no entry"
    assert (corpus_copy / "catalog.toml").read_text().startswith(catalog_before)
    assert not any("iec-smart-cities" in n for n in notes), notes


def test_upload_metadata_follows_the_sanitised_name(make_settings, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    from assistant.library import add_bulletins

    corpus = tmp_path / "c"
    corpus.mkdir()
    index = Index(make_settings(corpus), embedder=embedder)
    src = tmp_path / "up" / "a b (1).txt"
    src.parent.mkdir()
    src.write_text(NEW_TEXT)
    report, _ = add_bulletins(index, [src], publisher="ITU", date="2026-01-02", title="Typed title",
                              progress=False)
    (doc_id,) = report.added_docs
    catalog = tomllib.loads((corpus / "catalog.toml").read_text())
    assert list(catalog) == [doc_id], "no entry under the unsanitised name"
    doc = index.db.bulletin(doc_id)
    assert (doc["title"], doc["publisher"], doc["date"]) == ("Typed title", "ITU", "2026-01-02")


def test_upload_replace_replaces_the_catalog_entry_with_the_typed_one(make_settings, corpus_copy: Path,  # noqa: ANN001
                                                                      tmp_path: Path, embedder) -> None:
    from assistant.library import add_bulletins

    index = Index(make_settings(corpus_copy), embedder=embedder)
    assert index.update(progress=False).ok
    src = tmp_path / "iec-smart-cities.txt"
    src.write_text(NEW_TEXT)
    report, _ = add_bulletins(index, [src], publisher="Example Weekly", date="2026-02-03", title="", replace=True,
                              progress=False)
    assert report.ok and report.changed_docs == ["iec-smart-cities"], report
    assert read_catalog_entry(corpus_copy, "iec-smart-cities") == {"publisher": "Example Weekly",
                                                                   "date": "2026-02-03"}
    doc = index.db.bulletin("iec-smart-cities")
    assert (doc["title"], doc["publisher"]) == ("IEC publishes a new smart cities white paper", "Example Weekly")
    assert len(list((index.settings.home / "backups").glob("iec-smart-cities-*.txt"))) == 1
    tomllib.loads((corpus_copy / "catalog.toml").read_text())
    assert read_catalog_entry(corpus_copy, OTHER)["publisher"] == "ANSI", "the other entries are untouched"


def read_catalog_entry(corpus: Path, doc_id: str) -> dict[str, str] | None:
    data = tomllib.loads((corpus / "catalog.toml").read_text())
    entry = data.get(doc_id)
    return {k: v for k, v in entry.items() if k in ("title", "publisher", "date")} if entry else None
