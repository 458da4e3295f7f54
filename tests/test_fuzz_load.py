"""Fuzzing the loaders (hypothesis): generated PDFs (random bytes, truncated and mutated valid ones),
HTML, e-mail-like and plain text in odd encodings, MIME messages (.eml: nested, broken and mutated
multiparts, any charset and transfer encoding, attachments) and mailboxes (.mbox) either load to text
free of control characters (and warn nothing) or fail with the file's one-line LoadError; no other
exception ever leaves ``load_text`` or ``load_parts``."""

from __future__ import annotations

import functools
import io
import re
import warnings
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.errors import LoadError
from index.load import load_parts, load_text
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


# MIME messages and mailboxes ----------------------------------------------------------------------
CHARSETS = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "shift_jis", "koi8-r",
                            "x-unknown", "base64", "rot13", "utf-8\x00", "", '"utf-8'])
ENCODINGS_CTE = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus", ""])
NAMES = st.sampled_from(["news.txt", "report.pdf", "minutes.docx", "page.html", "logo.png", "notes.md", "",
                         "a/../b.txt", "=?utf-8?q?caf=C3=A9.txt?=", "\x1b]0;x\x07.txt", "noext"])
SENDERS = st.sampled_from(["a@b", "<>", "Name <a@b>", "=?x?q?n?= <a@>", "", '"\x1b[31m" <x@y>', "@@@"])
DATES = st.sampled_from(["Tue, 31 Feb 2026 10:00 +0000", "x", "", "Mon, 4 May 2026 09:00:00 +9999",
                         "Mon, 04 May 2026 09:00:00 +0000", "Mon, 04 May 99999 09:00:00 +0000"])


@st.composite
def mime_parts(draw: st.DrawFn, depth: int = 0) -> str:
    """One MIME entity: a multipart of nested entities (boundary declared, missing or wrong, closed or
    not) or a text, HTML or attachment leaf in any charset and transfer encoding."""
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from(["b1", "b2", "==x==", ""]))
        sub = draw(st.sampled_from(["mixed", "alternative", "related", "digest", "report"]))
        said = draw(st.sampled_from([boundary, boundary, boundary, "other", None]))
        head = f"Content-Type: multipart/{sub}" + (f'; boundary="{said}"' if said is not None else "")
        children = [draw(mime_parts(depth + 1)) for _ in range(draw(st.integers(0, 3)))]
        body = "".join(f"--{boundary}\n{c}\n" for c in children)
        return f"{head}\n\n{draw(WORDS)}\n{body}" + (f"--{boundary}--\n" if draw(st.booleans()) else "")
    kind = draw(st.sampled_from(["text/plain", "text/html", "application/pdf", "application/octet-stream",
                                 "image/png", "message/rfc822", "text"]))
    headers = [f"Content-Type: {kind}; charset={draw(CHARSETS)}" + draw(st.sampled_from(["", "; format=flowed",
                                                                                         "; delsp=yes"])),
               f"Content-Transfer-Encoding: {draw(ENCODINGS_CTE)}"]
    if draw(st.booleans()):
        headers.append(f'Content-Disposition: {draw(st.sampled_from(["attachment", "inline", "x"]))};'
                       f' filename="{draw(NAMES)}"')
    payload = draw(st.one_of(WORDS, st.sampled_from(["SGVsbG8gd29ybGQ=", "=E2=80=9C=\n", "<p>ISO<script>x</script>",
                                                     "JVBERi0xLjQK", "UEsDBA==", "\x1b[2J", "caf\xe9 "]))) * draw(
        st.integers(1, 5))
    return "\n".join(headers) + "\n\n" + payload


@st.composite
def mime_messages(draw: st.DrawFn) -> bytes:
    """A whole message: odd headers, a MIME tree, then its bytes in some encoding and mutated."""
    headers = [f"From: {draw(SENDERS)}", f"Subject: {draw(WORDS)}", f"Date: {draw(DATES)}", "MIME-Version: 1.0"]
    text = "\n".join(headers) + "\n" + draw(mime_parts())
    data = bytearray(text.encode(draw(st.sampled_from(ENCODINGS)), "replace"))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            del data[at:at + draw(st.integers(1, 32))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@functools.cache
def small_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("ISO 37120 defines indicators for city services.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@st.composite
def built_messages(draw: st.DrawFn) -> bytes:
    """A well-formed newsletter as a mail program writes it (text and HTML bodies, attachments of every
    kind, some of them broken), then perhaps mutated."""
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Date"] = draw(SENDERS), re.sub(r"\s", " ", draw(WORDS)), draw(DATES)
    if draw(st.booleans()):
        msg.set_content(draw(WORDS))
    if draw(st.booleans()):
        msg.add_alternative(f"<html><body><nav>Home</nav><p>{draw(WORDS)}</p></body></html>", subtype="html")
    good = text_pdf("ISO 37120 defines indicators for city services.")
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.sampled_from([good, good[:200], small_docx(), small_docx()[:500], b"PK\x03\x04", b"",
                                     b"Agenda of the plenary.", b"\xff\xfe\x00x"]))
        name = draw(st.sampled_from(["a.pdf", "b.docx", "c.txt", "d.html", "e.png", "a.pdf", "f.md"]))
        if msg.get_content_maintype() != "multipart" and not msg.get_payload():
            msg.set_content("")
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    for n, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"==b{n}==")  # else the generator draws one with the random module
    data = bytearray(bytes(msg))
    for _ in range(draw(st.sampled_from([0, 0, 1, 3]))):
        at = draw(st.integers(0, len(data)))
        data[at:at + draw(st.integers(0, 16))] = draw(st.binary(max_size=8))
    return bytes(data)


def check_parts(path: Path, data: bytes) -> None:
    """``data`` as ``path`` loads to bulletins of clean text (with one-line failures and caveats) or
    fails with that file's one-line error, nothing else."""
    path.write_bytes(data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            loaded = load_parts(path)
    except LoadError as exc:
        assert type(exc) is LoadError and exc.path == path, (type(exc), exc.path)
        assert "\n" not in str(exc) and "\r" not in str(exc) and not CONTROL.search(str(exc)), repr(str(exc))
        return
    assert not [w for w in caught if not issubclass(w.category, DeprecationWarning)], [str(w.message) for w in caught]
    assert loaded.parts and len({p.key for p in loaded.parts}) == len(loaded.parts)
    for part in loaded.parts:
        assert part.text.strip() and not CONTROL.search(part.text) and "\r" not in part.text, repr(part.text[:200])
        assert "#" not in part.key.split("#", 1)[-1] if path.suffix == ".eml" else True
        assert all(v and not CONTROL.search(v) and "\n" not in v for v in part.meta.values()), part.meta
    for line in [why for _, why in loaded.failed] + loaded.notes:
        assert line.strip() and "\n" not in line and "\r" not in line and not CONTROL.search(line), repr(line)


@FUZZ
@given(data=st.one_of(mime_messages(), built_messages()))
def test_fuzzed_mime_messages_load_or_fail_with_one_line(tmp_path: Path, data: bytes) -> None:
    check_parts(tmp_path / "fuzz.eml", data)


@FUZZ
@given(messages=st.lists(st.one_of(mime_messages(), built_messages(), emails().map(str.encode)), max_size=4),
       separator=st.sampled_from([b"From a@b Mon May  4 09:00:00 2026\n", b"From \n", b"\nFrom x\n", b">From a\n"]))
def test_fuzzed_mailboxes_load_or_fail_with_one_line(tmp_path: Path, messages: list[bytes], separator: bytes) -> None:
    check_parts(tmp_path / "fuzz.mbox", b"".join(separator + m + b"\n" for m in messages))


@pytest.mark.parametrize("suffix", [".pdf", ".html", ".txt", ".eml", ".mbox", ".docx"])
def test_a_file_that_vanishes_is_its_own_error(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(LoadError) as info:
        load_text(tmp_path / f"gone{suffix}")
    assert "\n" not in str(info.value) and f"gone{suffix}" in str(info.value)
