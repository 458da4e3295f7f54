"""Loading bulletins: every parser failure is that file's one-line error and blocks nothing else,
extracted text has one size limit whatever the format, and no control character gets past the loader
(to a terminal through ``ask``, ``index status`` or ``whats-new``). Also (slow) a load test
(bench/load.py) against a real ``stdnews chat`` process on loopback: concurrent users get every answer,
and the server's memory does not climb; no timing assertions there: CI machines differ."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from index.errors import LoadError
from index.load import MAX_TEXT_BYTES, load_text
from tests.app_server import chat_process
from tests.conftest import small_corpus
from tests.pdfs import raw_pdf

SEEDS = Path(__file__).resolve().parent.parent / "corpus"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what must never reach a terminal


# PDFs built by hand: the hostile shapes need control of every byte ---------------------------------
def pages_pdf(stream: bytes, stream_dict: bytes | None = None, pages: int = 1) -> bytes:
    """``pages`` pages that all show the one content stream ``stream`` (object 3)."""
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    font = 4 + pages
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< " + (stream_dict or f"/Length {len(stream)}".encode()) + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    page = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>").encode()
    objects += [page] * pages
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return raw_pdf(objects)


@functools.cache
def length_bomb_pdf() -> bytes:
    """A tiny PDF whose content stream declares a length of a terabyte."""
    return pages_pdf(b"BT /F1 12 Tf 72 720 Td (ISO 37120 city indicators.) Tj ET", b"/Length 1000000000000")


@functools.cache
def flate_bomb_pdf() -> bytes:
    """A small compressed content stream that inflates to 128 MiB (pypdf stops at 75 MB)."""
    packed = zlib.compress(b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n" + b" " * 2**27, 9)
    return pages_pdf(packed, f"/Length {len(packed)} /Filter /FlateDecode".encode())


def shared_stream_pdf(pages: int = 1000) -> bytes:
    """``pages`` pages sharing one ~10 KB content stream: a small file, ~10 MB of text."""
    line = b"(ISO 37120 defines indicators for city services and quality of life.) '"
    stream = zlib.compress(b"BT /F1 10 Tf 72 720 Td 12 TL " + b" ".join([line] * 150) + b" ET")
    return pages_pdf(stream, f"/Length {len(stream)} /Filter /FlateDecode".encode(), pages)




def assert_one_line_naming(err: LoadError, name: str) -> None:
    message = str(err)
    assert name in message and "\n" not in message and "\r" not in message, message
    assert not CONTROL.search(message), message


# 1. every parser failure is that file's error ------------------------------------------------------
@pytest.mark.parametrize("name, make", [("length-bomb.pdf", length_bomb_pdf), ("flate-bomb.pdf", flate_bomb_pdf)])
def test_pdf_limit_errors_are_the_files_one_line_error(tmp_path: Path, name: str, make) -> None:  # noqa: ANN001
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(LoadError) as info:
        load_text(path)
    assert_one_line_naming(info.value, name)
    assert "PDF" in info.value.reason


def test_bad_pdfs_fail_alone_and_block_no_later_update(tmp_path: Path, make_settings, embedder) -> None:  # noqa: ANN001
    from index.indexer import Index

    corpus = small_corpus(tmp_path)
    (corpus / "length-bomb.pdf").write_bytes(length_bomb_pdf())
    (corpus / "flate-bomb.pdf").write_bytes(flate_bomb_pdf())
    assert len(length_bomb_pdf()) < 1024 and len(flate_bomb_pdf()) < 200_000
    (corpus / "itu-kpis.txt").write_text("ITU-T Y.4903 approved\n\nITU-T approved Y.4903 on smart city KPIs.\n")
    index = Index(make_settings(corpus), embedder=embedder)

    for attempt in range(2):  # the second update meets the same bad files and is not blocked by them
        if attempt:
            (corpus / "iso-37122.txt").write_text("ISO 37122 published\n\nISO published 37122 on smart cities.\n")
        report = index.update(progress=False)
        failed = {Path(path).name: why for path, why in report.failed}
        assert set(failed) == {"length-bomb.pdf", "flate-bomb.pdf"}, report.failed
        assert all("\n" not in why and "PDF" in why for why in failed.values()), failed
        docs = {b["doc_id"] for b in index.db.bulletins()}
        assert docs == {"jtc1-smart-cities-webconference", "iec-smart-cities", "itu-kpis"} | (
            {"iso-37122"} if attempt else set())
        assert report.added_docs == (["iso-37122"] if attempt else sorted(docs))
    assert index.verify() == []


# 2. one size limit on extracted text ---------------------------------------------------------------
def test_a_pdf_extracting_past_the_text_limit_is_refused_while_extracting(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PageObject

    data = shared_stream_pdf(1000)
    assert len(data) < 200_000  # small on disk ...
    path = tmp_path / "shared-stream.pdf"
    path.write_bytes(data)
    calls = {"pages": 0}
    extract = PageObject.extract_text

    def counting(self: PageObject, *args: object, **kw: object) -> str:
        calls["pages"] += 1
        return extract(self, *args, **kw)

    monkeypatch.setattr(PageObject, "extract_text", counting)
    with pytest.raises(LoadError) as info:
        load_text(path)
    assert_one_line_naming(info.value, "shared-stream.pdf")
    assert "too large" in info.value.reason
    # ... ~10 MB of text; refused once past the limit, not after extracting every page
    per_page = len(load_text(_write(tmp_path / "one.pdf", shared_stream_pdf(1))).encode())
    assert per_page * 1000 > MAX_TEXT_BYTES
    assert calls["pages"] <= MAX_TEXT_BYTES // per_page + 2, calls


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# 3. control characters removed at load time --------------------------------------------------------
HOSTILE = ("\x1b]0;pwned title\x07\x1b[2J\x1b[1;31m", "\x9b2J\x9d0;c1 title\x9c", "\x1bP1$r\x1b\\", "\x1b(B",
           "\x08\x0b\x0c\x7f\x85\x1b")


def _hostile(text: str) -> str:
    """``text`` with a terminal escape sequence or control character in every line."""
    return "".join(f"{seq}{line}\n" for seq, line in zip(HOSTILE * 20, text.splitlines(), strict=False))


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
def test_control_characters_are_removed_from_loaded_text(tmp_path: Path, suffix: str) -> None:
    body = "ISO 37120 news\n\nThe city of Milano adopted\tISO 37120 indicators.\nSecond line.\n"
    text = _hostile(body)
    if suffix == ".html":
        text = ("<html><body><main><h1>&#x1b;]0;entity title&#7;News &#x9b;2J</h1>"
                + "".join(f"<p>{line}</p>" for line in text.splitlines()) + "</main></body></html>")
    path = _write(tmp_path / f"bulletin{suffix}", text.encode())
    loaded = load_text(path)
    assert not CONTROL.search(loaded), repr(loaded)
    assert "pwned" not in loaded and "c1 title" not in loaded  # a title sequence's payload goes with it
    assert "Milano adopted" in loaded and "Second line." in loaded


def test_control_characters_are_removed_from_catalog_fields(tmp_path: Path) -> None:
    from index.catalog import read_catalog

    (tmp_path / "catalog.toml").write_text(
        '["news"]\ntitle = "\\u001b]0;pwned\\u0007Smart \\u001b[2Jcity\\u009b1m news"\n'
        'publisher = "IS\\u0000O\\u001b[31m"\ndate = 2024-05-01\n', encoding="utf-8")
    entry = read_catalog(tmp_path)["news"]
    assert entry["title"] == "Smart city news" and entry["publisher"] == "ISO"
    assert str(entry["date"]) == "2024-05-01"


def test_no_control_character_reaches_the_terminal(tmp_path: Path, embedder, capsys) -> None:  # noqa: ANN001
    from assistant.cli import main
    from index.indexer import Index

    corpus = small_corpus(tmp_path)
    (corpus / "escapes.txt").write_text(_hostile(
        "Milano adopts ISO 37120\n\nThe city of Milano adopted ISO 37120 indicators for city services in 2024.\n"
        "The council said the indicators cover water, transport and safety.\n"))
    with open(corpus / "catalog.toml", "a", encoding="utf-8") as fh:
        fh.write('\n["escapes"]\ntitle = "\\u001b]0;pwned\\u0007Milano \\u001b[2Jadopts\\u009b1m ISO 37120"\n'
                 'publisher = "City\\u001b[31m of Milano"\ndate = "2024-06-01"\n')
    home = str(tmp_path / "home")
    assert main(["--home", home, "--corpus", str(corpus), "index", "update", "--quiet"]) == 0
    question = "Which indicators did Milano adopt?"
    for argv in (["index", "status"], ["whats-new", "--since", "2000-01-01"], ["ask", question],
                 ["ask", "--json", question]):
        assert main(["--home", home, "--corpus", str(corpus), *argv]) == 0
    out, err = capsys.readouterr()
    assert "Milano" in out and "escapes" in out
    assert not CONTROL.search(out + err), [line for line in (out + err).splitlines() if CONTROL.search(line)]
    assert "\\u001b" not in out.lower() and "pwned" not in out  # nor escaped in the JSON
    chunks = Index(_settings(Path(home), corpus), embedder=embedder).db.chunks_of("escapes")
    assert chunks and not any(CONTROL.search(c["text"]) for c in chunks)


def test_loading_prints_nothing_of_its_own(tmp_path: Path) -> None:
    """Parsers' own warnings and log lines (pypdf logs a font's encoding name, which the PDF chooses)
    never reach the terminal beside the one line a refused file gets; a fresh process, as the CLI is
    (pytest would capture both)."""
    stream = b"BT /F1 12 Tf 72 720 Td (ISO 37120 city indicators.) Tj ET"
    _write(tmp_path / "font.pdf", pages_pdf(stream).replace(b"/BaseFont /Helvetica",
                                                            b"/BaseFont /Helvetica /Encoding /X#1b]0;pwned#07"))
    _write(tmp_path / "page.html", b'<?xml version="1.0"?><html><body><p>ISO 37120 city indicators.</p></body></html>')
    _write(tmp_path / "url.html", b"https://example.org/bulletin.html")
    code = ("import sys; from pathlib import Path; from index.load import load_text\n"
            "for name in sys.argv[1:]: print(len(load_text(Path(name))))")
    files = [str(tmp_path / n) for n in ("font.pdf", "page.html", "url.html")]
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, cwd=SEEDS.parent,
                         timeout=120)
    assert out.returncode == 0 and len(out.stdout.split()) == 3, out.stderr
    assert out.stderr == "", out.stderr


def _settings(home: Path, corpus: Path):  # noqa: ANN202
    from index.settings import load_settings

    return load_settings(home=home, corpus=corpus)


# a real chat process under load (slow) --------------------------------------------------------------
USERS, QUESTIONS = 4, 40
GROWTH_LIMIT_MB = 150  # generous: a leak per question would pass it within a few hundred questions


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_concurrent_users_all_answered_and_memory_flat(tmp_path: Path) -> None:
    from bench.load import SEED_SET, plot, read_questions, report, run_load

    questions = read_questions(SEED_SET)[::4]  # a spread: facts, follow-ups, questions to refuse
    with chat_process(tmp_path) as srv:
        result = run_load(srv.url, questions, users=USERS, total=QUESTIONS, pid=srv.pid, warmup=16, interval=0.2)
    print(report(result))
    assert result["errors"] == 0, result["error_samples"]
    assert result["answered"] == QUESTIONS
    assert result["refused"] < QUESTIONS, "most of the seed questions have answers"
    mem = result["memory"]
    assert mem["samples"] >= 4, mem
    assert mem["before_mb"] and mem["peak_mb"] >= mem["before_mb"]
    assert mem["growth_halves_mb"] < GROWTH_LIMIT_MB, mem
    assert plot(result, tmp_path / "load.png").stat().st_size > 10_000
