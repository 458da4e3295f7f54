"""Fuzzing the loaders (hypothesis): generated PDFs (random bytes, truncated and mutated valid ones),
HTML, e-mail-like and plain text in odd encodings either load to text free of control characters (and
warn nothing) or fail with the file's one-line LoadError; no other exception ever leaves ``load_text``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.errors import LoadError
from index.load import load_text
from tests.pdfs import text_pdf
from tests.test_load import flate_bomb_pdf, length_bomb_pdf, shared_stream_pdf

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252", "latin-1", "shift_jis", "koi8-r")


def check(path: Path, data: bytes, suffix: str | None = None) -> None:
    """``data`` as ``path`` loads to clean text or fails with that file's one-line error, nothing else."""
    path.write_bytes(data)
    try:
        with warnings.catch_warnings(record=True) as caught:  # a warning would reach the terminal too
            text = load_text(path, suffix=suffix)
    except LoadError as exc:
        message = str(exc)
        assert type(exc) is LoadError and exc.path == path, (type(exc), exc.path)
        assert message.startswith(f"{path}: ") and exc.reason.strip(), message
        assert "\n" not in message and "\r" not in message and not CONTROL.search(message), repr(message)
        return
    assert not [w for w in caught if not issubclass(w.category, DeprecationWarning)], [str(w.message) for w in caught]
    assert isinstance(text, str) and text.strip()
    assert not CONTROL.search(text) and "\r" not in text, repr(text[:200])


# PDFs ---------------------------------------------------------------------------------------------
SEED_PDFS = [text_pdf("ISO 37120 defines indicators for city services."), text_pdf("IEC (61850) \\ energy"),
             length_bomb_pdf(), shared_stream_pdf(3)]


@st.composite
def mutated_pdfs(draw: st.DrawFn) -> bytes:
    """A valid PDF, cut short, with bytes overwritten, inserted or deleted, or a PDF token spliced in."""
    data = bytearray(draw(st.sampled_from(SEED_PDFS)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "set", "insert", "delete", "token"]))
        if op == "cut":
            del data[at:]
        elif op == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "token":
            data[at:at] = draw(st.sampled_from([b" /Length 99999999999 ", b" 9 0 R ", b"<<", b">>", b"[", b"]",
                                                b" /Filter /FlateDecode ", b"endstream", b" /Kids [3 0 R] ",
                                                b" /Count -1 ", b"\x1b]0;t\x07", b"(\x1b[2J)", b" 0 0 obj ",
                                                b"/Encrypt 1 0 R"]))
    return bytes(data)


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048), st.binary(max_size=64).map(lambda b: b"%PDF-1.4\n" + b),
                      mutated_pdfs()))
def test_fuzzed_pdfs_load_or_fail_with_one_line(tmp_path: Path, data: bytes) -> None:
    check(tmp_path / "fuzz.pdf", data)


def test_hostile_pdfs_fail_with_one_line(tmp_path: Path) -> None:
    for data in (length_bomb_pdf(), flate_bomb_pdf()):
        check(tmp_path / "bomb.pdf", data)


# HTML ---------------------------------------------------------------------------------------------
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
TAGS = st.sampled_from(["p", "div", "main", "article", "script", "style", "nav", "table", "tr", "li", "br",
                        "h1", "svg", "template", "form", "pre", "x-odd"])


@st.composite
def html_pages(draw: st.DrawFn) -> str:
    """Nested, sometimes unbalanced markup with entities, comments and control characters."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 40))):
        parts.append(draw(st.one_of(
            WORDS,
            TAGS.map(lambda t: f"<{t}>"),
            TAGS.map(lambda t: f"</{t}>"),
            st.sampled_from(["&amp;", "&#x1b;", "&#7;", "&#x9b;", "&#0;", "&#xd800;", "&#99999999;", "&bogus;",
                             "<!--", "-->", "<![CDATA[", "]]>", "<!DOCTYPE html>", "<?xml?>", '<a href="x">',
                             "<p role=navigation>", "\x1b]0;t\x07", "\x1b[2J", "\r", "\x0c", "\x85"]),
        )))
    if draw(st.booleans()):
        depth = draw(st.integers(100, 3000))
        parts.append("<div>" * depth + "deep" + "</div>" * depth)
    return "".join(parts)


@FUZZ
@given(page=html_pages(), encoding=st.sampled_from(ENCODINGS), suffix=st.sampled_from([".html", ".htm"]))
def test_fuzzed_html_loads_or_fails_with_one_line(tmp_path: Path, page: str, encoding: str, suffix: str) -> None:
    check(tmp_path / f"fuzz{suffix}", page.encode(encoding, errors="replace"))


# e-mail-like and plain text -----------------------------------------------------------------------
@st.composite
def emails(draw: st.DrawFn) -> str:
    """Headers, a MIME boundary, quoted-printable and base64 lines, and a body of anything."""
    headers = [f"{name}: {draw(WORDS)}" for name in draw(st.lists(
        st.sampled_from(["From", "To", "Subject", "Date", "Content-Type", "Content-Transfer-Encoding",
                         "=?utf-8?B?", "Received"]), max_size=6))]
    body = draw(st.lists(st.one_of(WORDS, st.sampled_from(["--boundary", "=1B]0;t=07", "=E2=80=9C", "=\n",
                                                          "SGVsbG8=", "> quoted", "\x1b[31mred\x1b[0m"])),
                         max_size=20))
    return "\n".join(headers) + "\n\n" + "\n".join(body)


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048),
                      st.tuples(emails(), st.sampled_from(ENCODINGS)).map(lambda t: t[0].encode(t[1], "replace")),
                      st.tuples(st.text(max_size=500), st.sampled_from(ENCODINGS)).map(
                          lambda t: t[0].encode(t[1], "surrogatepass" if "utf" in t[1] else "replace"))),
       suffix=st.sampled_from([".txt", ".md", ".eml", None]))
def test_fuzzed_text_loads_or_fails_with_one_line(tmp_path: Path, data: bytes, suffix: str | None) -> None:
    check(tmp_path / "fuzz.txt", data, suffix)


@pytest.mark.parametrize("suffix", [".pdf", ".html", ".txt"])
def test_a_file_that_vanishes_is_its_own_error(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(LoadError) as info:
        load_text(tmp_path / f"gone{suffix}")
    assert "\n" not in str(info.value) and f"gone{suffix}" in str(info.value)
