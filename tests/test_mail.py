"""E-mail newsletters (.eml, .mbox) and Word documents (.docx) as bulletins: the loader reads each
message's HTML (else plain) body with its headers as metadata and each attachment as a bulletin of its
own; through ``stdnews index update`` and ``stdnews ask --json`` they are answered with citations;
bad input is one line each while the rest is indexed; a changed, removed or half-recorded e-mail
file leaves no duplicates or strays behind."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from index.errors import LoadError
from index.indexer import Index
from index.load import MAX_TEXT_BYTES, load_parts
from tests.conftest import SEED_CORPUS, expected_ids
from tests.pdfs import text_pdf

MAIL = Path(__file__).resolve().parent / "data" / "mail"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def stdnews(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=600)


def docx_bytes(core_title: str | None = "Osprey Metrology Board bulletin, spring 2026") -> bytes:
    """A Word document written with python-docx: a heading, paragraphs around a table with a merged
    cell and a table nested in a cell, and (optionally) a title in its core properties."""
    import docx

    document = docx.Document()
    if core_title:
        document.core_properties.title = core_title
    document.add_heading("Calibration news from the Osprey Metrology Board", 1)
    document.add_paragraph("The Osprey Metrology Board accredited 14 new calibration laboratories for pressure"
                           " gauges in March 2026.")
    table = document.add_table(rows=3, cols=3)
    for (row, col), text in {(0, 0): "Committee", (0, 1): "Convenor", (0, 2): "Next meeting",
                             (1, 0): "OMB/TC 9 Pressure", (1, 1): "Dana Whitlock", (1, 2): "3 September 2026",
                             (2, 0): "OMB/TC 11 Flow"}.items():
        table.cell(row, col).text = text
    merged = table.cell(2, 1).merge(table.cell(2, 2))
    merged.text = "Vacant since the spring"
    inner = table.cell(1, 2).add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "Online"
    inner.cell(0, 1).text = "Lisbon"
    document.add_paragraph("The board meets again after the summer.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def eml(body: bytes | str, *, charset: str | None = "utf-8", subtype: str = "plain",
        attachments: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    """An e-mail of one body (its bytes sent 8bit under ``charset``, or none declared) and attachments."""
    raw = body.encode() if isinstance(body, str) else body
    params = f"; charset={charset}" if charset else ""
    head = (b"From: Osprey Metrology Board <news@omb.example.org>\r\nSubject: OMB news\r\n"
            b"Date: Fri, 22 May 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n")
    if not attachments:
        return head + f"Content-Type: text/{subtype}{params}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".encode() + raw
    msg = EmailMessage()
    msg["From"] = "Osprey Metrology Board <news@omb.example.org>"
    msg["Subject"] = "OMB news"
    msg["Date"] = "Fri, 22 May 2026 09:00:00 +0000"
    msg.set_content(raw.decode())
    for name, data in attachments:
        kind = ("text", "plain") if name.endswith(".txt") else ("application", name.rsplit(".", 1)[-1])
        msg.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=name)
    return bytes(msg)


# the loader ------------------------------------------------------------------------------------------
def test_an_eml_is_its_html_body_and_each_attachment() -> None:
    loaded = load_parts(MAIL / "nsi-weekly.eml")
    assert [p.key for p in loaded.parts] == ["", "TC-412-agenda", "liaison-report"]  # logo.png is no bulletin
    assert not loaded.failed and not loaded.notes
    body, agenda, report = loaded.parts
    assert body.meta == {"title": "NSI Weekly: water metering draft approved",
                         "publisher": "Northwind Standards Institute", "date": "2026-05-12"}
    assert "convened by Ilse Marwick" in body.text  # the HTML part (the plain one says "Convenor: ...")
    for noise in ("Unsubscribe", "window.track", "You receive this newsletter", "font-family"):
        assert noise not in body.text, noise
    assert agenda.meta == {"publisher": "Northwind Standards Institute", "date": "2026-05-12"}  # no subject
    assert "takes place in Tampere on 9 June 2026" in agenda.text
    assert "37 national members voted" in report.text


def test_an_mbox_is_one_bulletin_per_message() -> None:
    loaded = load_parts(MAIL / "harbour-digest.mbox")
    assert [p.key for p in loaded.parts] == ["1", "2", "3"]
    assert [p.meta for p in loaded.parts] == [
        {"title": "Harbour digest: tide gauge formats", "publisher": "Harbour Data Consortium", "date": "2026-05-04"},
        {"title": "Coastal grid forum: charging connectors", "publisher": "secretariat@coastal-grid.example.org",
         "date": "2026-05-12"},  # no display name: the address
        {"title": "Harbour digest: buoy telemetry", "publisher": "Harbour Data Consortium", "date": "2026-05-18"}]
    assert "CGF-7 connector profile" in loaded.parts[1].text and "Forward to a colleague" not in loaded.parts[1].text


def test_a_docx_is_its_paragraphs_and_table_cells_in_order(tmp_path: Path) -> None:
    path = tmp_path / "omb.docx"
    path.write_bytes(docx_bytes())
    (part,) = load_parts(path).parts
    assert part.meta == {"title": "Osprey Metrology Board bulletin, spring 2026"}
    lines = [line for line in part.text.splitlines() if line]
    assert lines == [
        "Calibration news from the Osprey Metrology Board",
        "The Osprey Metrology Board accredited 14 new calibration laboratories for pressure gauges in March 2026.",
        "Committee | Convenor | Next meeting",
        "OMB/TC 9 Pressure | Dana Whitlock | 3 September 2026 Online | Lisbon",  # a table in the cell
        "OMB/TC 11 Flow | Vacant since the spring",  # the merged cell once
        "The board meets again after the summer."]
    path.write_bytes(docx_bytes(core_title=None))
    assert load_parts(path).parts[0].meta == {}  # no title property: the catalog or the first line gives it


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("no-body.eml", None, "has an empty message body"),
    ("broken-mime.eml", None, "has a broken MIME structure (MultipartInvariantViolationDefect,"
                              " StartBoundaryNotFoundDefect); no message body can be found"),
    ("empty.mbox", None, "is an empty mailbox (no messages)"),
    ("headers-only.eml", b"From: a@example.org\r\nSubject: nothing\r\n", "has an empty message body"),
    ("images-only.eml", eml("<html><body><img src='cid:logo'><script>x()</script></body></html>", subtype="html"),
     "holds no text (only scripts, styles or navigation)"),
    ("no-boundary.eml", b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nText without parts.\r\n",
     "has a broken MIME structure (MultipartInvariantViolationDefect, NoBoundaryInMultipartDefect);"
     " no message body can be found"),
    ("not-a-mailbox.mbox", b"Subject: a single message\n\nwithout the From line that starts one\n",
     "holds no messages (no line starts with 'From '); is it an mbox file?"),
    ("blank-messages.mbox", b"From a@example.org Mon May  4 09:00:00 2026\nSubject: one\n\n\n"
                            b"From a@example.org Mon May  4 09:00:00 2026\nSubject: two\n\n \n",
     "none of its 2 messages can be read (first: message 1 ('one'): has an empty message body)"),
    ("corrupt.docx", b"PK\x03\x04 not a zip archive at all", "is not a .docx file (not a zip archive); save it"
                                                               " again as a Word document"),
    ("not-word.docx", None, "is a broken .docx ("),
])
def test_bad_mail_and_docx_are_one_line(tmp_path: Path, name: str, data: bytes | None, reason: str) -> None:
    path = tmp_path / name
    if name == "not-word.docx":  # a zip, but no Word document inside
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
    elif data is None:
        shutil.copy(MAIL / name, path)
    else:
        path.write_bytes(data)
    with pytest.raises(LoadError) as info:
        load_parts(path)
    assert type(info.value) is LoadError and info.value.path == path
    assert info.value.reason.startswith(reason), info.value.reason
    assert "\n" not in str(info.value) and not CONTROL.search(str(info.value))


@pytest.mark.parametrize(("data", "text", "note"), [
    (eml("Caf\xe9 labels".encode("latin-1"), charset="x-kestrel-8"), "Café labels",
     "its body declares the unknown charset 'x-kestrel-8' and is not UTF-8; read as Windows-1252"),
    (eml("Café labels", charset="x-kestrel-8"), "Café labels",
     "its body declares the unknown charset 'x-kestrel-8'; read as UTF-8"),
    (eml("Café labels", charset="iso-8859-1"), "Café labels",
     "its body declares charset 'iso-8859-1' but is UTF-8; read as UTF-8"),
    (eml("Caf\xe9 labels \u201cnew\u201d".encode("cp1252"), charset=None), "Café labels \u201cnew\u201d",
     "its body declares no charset and is not UTF-8; read as Windows-1252"),
    (eml(b"Caf\xe9 labels", charset="utf-8"), "Caf\ufffd labels",
     "its body is not valid utf-8; undecodable bytes were replaced"),
    (eml(b"Caf\xe9 labels", charset="base64"), "Caf\xe9 labels",  # a codec, but not a text encoding
     "its body declares the unknown charset 'base64' and is not UTF-8; read as Windows-1252"),
    (eml("Café labels", charset="utf-8"), "Café labels", None),
])
def test_a_charset_that_lies_or_is_unknown_is_read_and_noted(tmp_path: Path, data: bytes, text: str,
                                                             note: str | None) -> None:
    path = tmp_path / "charset.eml"
    path.write_bytes(data)
    loaded = load_parts(path)
    assert loaded.parts[0].text.strip() == text
    assert loaded.notes == ([note] if note else [])


def test_flowed_plain_text_is_joined_and_html_line_breaks_are_spaces(tmp_path: Path) -> None:
    path = tmp_path / "flowed.eml"
    path.write_bytes(eml("The board accredited 14 \r\nlaboratories in March.\r\n-- \r\nOMB\r\n")
                     .replace(b"charset=utf-8", b"charset=utf-8; format=flowed"))
    assert load_parts(path).parts[0].text == "The board accredited 14 laboratories in March.\n-- \nOMB\n"
    path.write_bytes(eml("<p>The board accredited 14\r\n   laboratories.</p><pre>a\r\nb</pre>", subtype="html"))
    assert load_parts(path).parts[0].text == "The board accredited 14 laboratories.\n\na\nb\n"


def test_an_attachment_that_cannot_be_read_is_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "omb.eml"
    path.write_bytes(eml("Board news: 14 laboratories accredited.", attachments=(
        ("minutes.pdf", text_pdf("Minutes of the board.")[:200]), ("programme.txt", b"Programme of the day.\n"),
        ("empty.docx", b""))))
    loaded = load_parts(path)
    assert [p.key for p in loaded.parts] == ["", "programme"]
    assert [(k, why.split(" (")[0]) for k, why in loaded.failed] == [
        ("minutes", "attachment 'minutes.pdf': is a broken PDF"), ("empty", "attachment 'empty.docx': is empty")]


def test_the_size_limits_hold_for_every_new_format(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    big.write_bytes(eml("x") + b"A" * (26 * 2**20))
    with pytest.raises(LoadError, match=r"is too large for one bulletin \(26 MiB, limit 25 MiB\)"):
        load_parts(big)
    wordy = tmp_path / "wordy.eml"  # under 25 MiB as a file, but 9 MiB of text
    wordy.write_bytes(eml("ISO news. " * (9 * 2**20 // 10)))
    with pytest.raises(LoadError, match=f"its text passes {MAX_TEXT_BYTES // 2**20} MiB"):
        load_parts(wordy)
    import docx

    document = docx.Document()
    document.add_paragraph("ISO news. " * (9 * 2**20 // 10))
    document.save(tmp_path / "wordy.docx")
    with pytest.raises(LoadError, match=f"its text passes {MAX_TEXT_BYTES // 2**20} MiB"):
        load_parts(tmp_path / "wordy.docx")
    with zipfile.ZipFile(tmp_path / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("word/document.xml", "w", force_zip64=True) as member:
        for _ in range(300):  # 300 MiB of zeros, a few hundred KB packed
            member.write(bytes(2**20))
    assert (tmp_path / "bomb.docx").stat().st_size < 2**20
    with pytest.raises(LoadError, match=r"unpacks to 300 MiB \(limit 256 MiB\)"):
        load_parts(tmp_path / "bomb.docx")


# through the real pipeline -----------------------------------------------------------------------------
CATALOG = """\
["nsi-weekly"]
url = "https://nsi.example.org/weekly/2026-05-12"

["harbour-digest#2"]
publisher = "Coastal Grid Forum"
"""


@pytest.fixture(scope="module")
def mail_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """A corpus of the e-mail fixtures, a .docx, a seed bulletin and the bad files, indexed by
    ``stdnews index update``: (data directory, corpus, the update's result)."""
    root = tmp_path_factory.mktemp("mail")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("nsi-weekly.eml", "harbour-digest.mbox", "unknown-charset.eml", "no-body.eml", "broken-mime.eml",
                 "empty.mbox"):
        shutil.copy(MAIL / name, corpus / name)
    shutil.copy(SEED_CORPUS / "iec-smart-cities.txt", corpus)
    (corpus / "omb-spring.docx").write_bytes(docx_bytes())
    (corpus / "corrupt.docx").write_bytes(b"PK\x03\x04 not a zip archive")
    (corpus / "catalog.toml").write_text(CATALOG)
    home = root / "home"
    update = stdnews("--home", str(home), "index", "update", "--corpus", str(corpus), "--quiet")
    return home, corpus, update


def test_update_indexes_mail_and_reports_each_bad_file_in_one_line(mail_home) -> None:  # noqa: ANN001
    home, corpus, update = mail_home
    assert update.returncode == 1 and "Traceback" not in update.stderr
    lines = update.stderr.splitlines()
    assert sorted(line for line in lines if line.startswith("error: ")) == [
        f"error: {corpus / 'broken-mime.eml'}: has a broken MIME structure (MultipartInvariantViolationDefect,"
        " StartBoundaryNotFoundDefect); no message body can be found",
        f"error: {corpus / 'corrupt.docx'}: is not a .docx file (not a zip archive); save it again as a Word document",
        f"error: {corpus / 'empty.mbox'}: is an empty mailbox (no messages)",
        f"error: {corpus / 'no-body.eml'}: has an empty message body"]
    assert [line for line in lines if line.startswith("note: ")] == [
        f"note: {corpus / 'unknown-charset.eml'}: its body declares the unknown charset 'x-kestrel-8' and is not"
        " UTF-8; read as Windows-1252"]
    assert "4 file(s) could not be indexed; everything else was" in update.stderr
    assert "9 files: 9 new" in update.stdout  # bulletins: 3 of the .eml, 3 of the .mbox, .docx, seed, charset
    index = Index(_settings(home, corpus))
    assert {b["doc_id"] for b in index.db.bulletins()} == {
        "nsi-weekly", "nsi-weekly#TC-412-agenda", "nsi-weekly#liaison-report", "harbour-digest#1",
        "harbour-digest#2", "harbour-digest#3", "omb-spring", "iec-smart-cities", "unknown-charset"}
    assert index.db.chunk_ids() == expected_ids(corpus) == index.store.ids() == set(index.bm25.ids)
    verify = stdnews("--home", str(home), "index", "status", "--verify", "--corpus", str(corpus))
    assert verify.returncode == 0, verify.stderr  # refused files are listed, not mismatches


def test_catalog_entries_override_and_complete_the_headers(mail_home) -> None:  # noqa: ANN001
    home, corpus, _ = mail_home
    db = Index(_settings(home, corpus)).db
    body, pdf, other = (db.bulletin(d) for d in ("nsi-weekly", "nsi-weekly#liaison-report", "harbour-digest#2"))
    assert (body["title"], body["publisher"], body["date"], body["url"]) == (
        "NSI Weekly: water metering draft approved", "Northwind Standards Institute", "2026-05-12",
        "https://nsi.example.org/weekly/2026-05-12")
    assert (pdf["publisher"], pdf["date"], pdf["url"]) == (
        "Northwind Standards Institute", "2026-05-12", "https://nsi.example.org/weekly/2026-05-12")
    assert (other["title"], other["publisher"]) == ("Coastal grid forum: charging connectors", "Coastal Grid Forum")
    assert db.bulletin("omb-spring")["title"] == "Osprey Metrology Board bulletin, spring 2026"


@pytest.mark.parametrize(("question", "expect", "doc_id", "publisher"), [
    ("Who convenes TC 412?", "Ilse Marwick", "nsi-weekly", "Northwind Standards Institute"),
    ("Where does the TC 412 plenary meeting take place?", "Tampere", "nsi-weekly#TC-412-agenda",
     "Northwind Standards Institute"),
    ("Who was elected chair of the working group on tide gauge data formats?", "Ravi Okonkwo", "harbour-digest#1",
     "Harbour Data Consortium"),
    ("Which connector profile will harbour charging points for electric ferries use?", "CGF-7", "harbour-digest#2",
     "Coastal Grid Forum"),
    ("Who is the convenor of OMB/TC 9 Pressure?", "Dana Whitlock", "omb-spring", ""),  # a table cell
])
def test_mail_and_docx_bulletins_are_answered_with_citations(mail_home, question: str, expect: str,  # noqa: ANN001
                                                             doc_id: str, publisher: str) -> None:
    home, _, _ = mail_home
    out = stdnews("--home", str(home), "ask", question, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["refused"] is False and expect in result["answer"], result["answer"]
    cited = {c["doc_id"]: c for c in result["citations"]}
    assert doc_id in cited, (doc_id, list(cited))
    assert cited[doc_id]["publisher"] == publisher and f"[{cited[doc_id]['n']}]" in result["answer"]
    assert expect in cited[doc_id]["text"]


# incremental updates ------------------------------------------------------------------------------------
def _mbox(messages: list[tuple[str, str]]) -> bytes:
    """An mbox of (subject, body) messages from one sender."""
    out = b""
    for subject, body in messages:
        out += (f"From digest@harbour.example.org Mon May  4 09:00:00 2026\nFrom: Harbour Data Consortium"
                f" <digest@harbour.example.org>\nSubject: {subject}\nDate: Mon, 04 May 2026 09:00:00 +0000\n\n"
                f"{body}\n\n").encode()
    return out


def _settings(home: Path, corpus: Path):  # noqa: ANN202
    from index.settings import load_settings

    return load_settings(home=home, corpus=corpus)


def _consistent(index: Index, corpus: Path) -> None:
    ids = expected_ids(corpus)
    assert index.db.chunk_ids() == ids == index.store.ids() == set(index.bm25.ids)
    assert index.store.count() == len(ids) == len(index.bm25.ids)  # no duplicates anywhere
    assert index.verify() == []
    check = index.verify_corpus(corpus)
    assert check.mismatches == [], check.mismatches


def test_a_changed_mbox_updates_its_bulletins_and_a_removed_one_leaves(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    box = corpus / "digest.mbox"
    box.write_bytes(_mbox([("Tide gauges", "The tide gauge working group elected Ravi Okonkwo as chair."),
                           ("Ferries", "Ferry charging points will use the CGF-7 connector profile."),
                           ("Buoys", "The buoy task force counted 112 buoys reporting in the new format.")]))
    shutil.copy(SEED_CORPUS / "iec-smart-cities.txt", corpus)
    index = Index(_settings(tmp_path / "home", corpus), embedder=embedder)
    first = index.update(progress=False)
    assert first.ok and sorted(first.added_docs) == ["digest#1", "digest#2", "digest#3", "iec-smart-cities"]
    assert index.update(progress=False).unchanged == 2  # nothing to do twice
    (corpus / "catalog.toml").write_text('["digest#2"]\npublisher = "Coastal Grid Forum"\n')
    described = index.update(progress=False)  # a part's catalog entry is part of its file's fingerprint
    assert described.ok and sorted(described.changed_docs) == ["digest#1", "digest#2", "digest#3"]
    assert [index.db.bulletin(f"digest#{n}")["publisher"] for n in (1, 2)] == ["Harbour Data Consortium",
                                                                               "Coastal Grid Forum"]
    ferries = index.db.chunk_ids("digest#2")

    box.write_bytes(_mbox([("Tide gauges", "The tide gauge working group elected Mira Santos as chair."),
                           ("Ferries", "Ferry charging points will use the CGF-7 connector profile.")]))
    second = index.update(progress=False)
    assert second.ok and second.removed_docs == ["digest#3"] and second.unchanged == 1
    assert sorted(second.changed_docs) == ["digest#1", "digest#2"] and second.embedded == 1  # only the new text
    assert index.db.chunk_ids("digest#2") == ferries and not index.db.chunk_ids("digest#3")
    assert "Mira Santos" in index.db.bulletin("digest#1")["text"]
    assert not [c for c in index.db.all_chunks() if "Ravi Okonkwo" in c["text"]]
    _consistent(index, corpus)

    box.unlink()
    third = index.update(progress=False)
    assert sorted(third.removed_docs) == ["digest#1", "digest#2"]
    assert [b["doc_id"] for b in index.db.bulletins()] == ["iec-smart-cities"]
    _consistent(index, corpus)


def test_an_attachment_that_stops_loading_keeps_its_indexed_version(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = corpus / "omb.eml"
    path.write_bytes(eml("Board news: 14 laboratories accredited.",
                         attachments=(("minutes.pdf", text_pdf("The board elected Dana Whitlock as convenor.")),)))
    index = Index(_settings(tmp_path / "home", corpus), embedder=embedder)
    assert sorted(index.update(progress=False).added_docs) == ["omb", "omb#minutes"]
    path.write_bytes(eml("Board news: 15 laboratories accredited.",
                         attachments=(("minutes.pdf", text_pdf("The board elected")[:150]),)))
    report = index.update(progress=False)
    assert report.changed_docs == ["omb"] and not report.removed_docs
    assert [(p, why.split(" (")[0]) for p, why in report.failed] == [
        (str(path), "attachment 'minutes.pdf': is a broken PDF")]
    assert "Dana Whitlock" in index.db.bulletin("omb#minutes")["text"]  # kept as indexed before
    again = index.update(progress=False)
    assert again.unchanged == 1 and not again.failed  # refused once, not at every update
    assert index.verify() == [] and index.verify_corpus(corpus).mismatches == []


def test_a_file_whose_bulletins_were_not_all_recorded_is_indexed_again(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "nsi-weekly.eml").write_bytes((MAIL / "nsi-weekly.eml").read_bytes())
    index = Index(_settings(tmp_path / "home", corpus), embedder=embedder)
    assert index.update(progress=False).ok
    # the state a kill between the bulletin records of one file leaves: one record missing
    index.db.delete_bulletin("nsi-weekly#liaison-report")
    assert any("changed" in m for m in index.verify_corpus(corpus).mismatches)
    report = index.update(progress=False)
    assert report.ok and report.embedded == 0 and index.db.bulletin("nsi-weekly#liaison-report")
    _consistent(index, corpus)


def test_index_add_of_an_mbox_and_a_docx(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "omb.docx").write_bytes(docx_bytes())
    index = Index(_settings(tmp_path / "home", corpus), embedder=embedder)
    since = time.time()
    report = index.add([MAIL / "harbour-digest.mbox", tmp_path / "omb.docx", MAIL / "no-body.eml"], progress=False)
    assert sorted(report.added_docs) == ["harbour-digest#1", "harbour-digest#2", "harbour-digest#3", "omb"]
    assert [(Path(p).name, why) for p, why in report.failed] == [("no-body.eml", "has an empty message body")]
    assert not (corpus / "no-body.eml").exists()  # refused before it reached the corpus
    assert index.account(report, ["harbour-digest", "omb"], since) == set()  # what `index add` waits for
    _consistent(index, corpus)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["embedding", "record-manager", "before-bm25"])
def test_sigkill_mid_update_of_mail_then_rerun_is_clean(tmp_path: Path, point: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("nsi-weekly.eml", "harbour-digest.mbox"):
        shutil.copy(MAIL / name, corpus / name)
    (corpus / "omb.docx").write_bytes(docx_bytes())
    home = tmp_path / "home"
    args = ("--home", str(home), "index", "update", "--corpus", str(corpus), "--quiet")
    crashed = stdnews(*args, env={**ENV, "STDNEWS_CRASH_AT": point, "STDNEWS_INDEX_BATCH_SIZE": "3"})
    assert crashed.returncode == -9, crashed.stderr
    again = stdnews(*args)
    assert again.returncode == 0, again.stderr
    assert stdnews("--home", str(home), "index", "status", "--verify").returncode == 0
    index = Index(_settings(home, corpus))
    assert len(index.db.bulletins()) == 7
    _consistent(index, corpus)


def test_removing_one_message_in_the_library_removes_its_whole_file(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    """The Library lists an mbox's messages; the corpus holds the file: removing one message removes the
    file and every bulletin of it (it used to say "Removed" and remove nothing)."""
    from assistant.library import remove_bulletin

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "digest.mbox").write_bytes(_mbox([("Tide gauges", "The tide gauge group elected a chair."),
                                               ("Ferries", "Ferry charging points use one connector profile.")]))
    shutil.copy(SEED_CORPUS / "iec-smart-cities.txt", corpus)
    index = Index(_settings(tmp_path / "home", corpus), embedder=embedder)
    assert index.update(progress=False).ok
    report = remove_bulletin(index, "digest#2", progress=False)
    assert sorted(report.removed_docs) == ["digest#1", "digest#2"] and not (corpus / "digest.mbox").exists()
    assert [b["doc_id"] for b in index.db.bulletins()] == ["iec-smart-cities"]
    _consistent(index, corpus)
