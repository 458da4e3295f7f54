"""Read a bulletin file (.txt .md .html .pdf .docx, and e-mail: .eml .mbox) into plain text, or say why not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from index.errors import LoadError
from index.model import Loaded, Part

SUPPORTED = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".eml", ".mbox")
ATTACHABLE = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")  # an e-mail's attachments that are bulletins too
MULTIPART = (".eml", ".mbox")  # files that may hold several bulletins (index/mail.py)
_PACKED = (".pdf", ".docx", ".eml", ".mbox")  # layout, images or attachments ride along: the larger file limit
MAX_BYTES = 25 * 1024 * 1024  # any file (a PDF carries layout and images)
MAX_TEXT_BYTES = 8 * 1024 * 1024  # a text bulletin larger than this is a dump, not a bulletin
MAX_PDF_PAGES = 5000  # a page costs an extraction even when it holds no text
MAX_DOCX_INFLATED = 256 * 1024 * 1024  # a .docx is a zip: what its parts unpack to, before any is parsed

# Terminal control: CSI (ESC [ or C1 0x9b), string sequences up to their terminator (OSC ESC ] / 0x9d,
# DCS ESC P / 0x90, SOS, PM, APC), then any other escape; what is left of C0 (but tab and newline),
# DEL and C1 goes one by one. Form feed, vertical tab and NEL break lines.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_BREAKS = re.compile(r"[\x0b\x0c\x85]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_KIND = {".pdf": "PDF", ".html": "HTML", ".htm": "HTML", ".docx": ".docx", ".eml": "e-mail", ".mbox": "mailbox"}


def load_text(path: Path, suffix: str | None = None) -> str:
    """Return the main text of ``path`` (of all its bulletins, for an e-mail), free of control
    characters; raise LoadError with a one-line reason, whatever a parser raised. ``suffix``
    overrides the file's own (an upload waits under a temporary name)."""
    return "\n\n".join(p.text for p in load_parts(path, suffix).parts)


def load_parts(path: Path, suffix: str | None = None, data: bytes | None = None) -> Loaded:
    """The bulletins ``path`` holds: one for most files, a message and its attachments for an .eml,
    every message for an .mbox (``index.mail``). LoadError when none can be read. ``data``: the
    file's bytes when the caller has read them already (an update fingerprints them first)."""
    suffix = (suffix or path.suffix).lower()
    if suffix not in SUPPORTED:
        raise LoadError(path, f"unsupported file type '{suffix or '(none)'}' (use {', '.join(SUPPORTED)})")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LoadError(path, f"cannot be read ({exc.strerror or exc})") from None
    if suffix in MULTIPART:
        from index.mail import mail_parts

        check_bytes(path, data, suffix)
        return mail_parts(path, data, suffix)
    text, meta = load_data(path, data, suffix)
    return Loaded([Part("", text, meta)])


def check_bytes(name: object, data: bytes, suffix: str) -> None:
    """The file limits: not too large for its kind, not empty."""
    limit = MAX_BYTES if suffix in _PACKED else MAX_TEXT_BYTES
    if len(data) > limit:
        raise LoadError(name, f"is too large for one bulletin ({len(data) / 2**20:.0f} MiB, limit"
                              f" {limit // 2**20} MiB); split it into bulletins")
    if not data.strip():
        empty = "is an empty mailbox (no messages)" if suffix == ".mbox" else "is empty"
        raise LoadError(name, empty if not data else "holds only white space")


def load_data(name: object, data: bytes, suffix: str) -> tuple[str, dict[str, str]]:
    """The text of one bulletin's bytes (a file, or an e-mail's attachment) of type ``suffix``, and what
    the document says of itself (a .docx's title); errors name ``name``."""
    check_bytes(name, data, suffix)
    meta: dict[str, str] = {}
    try:
        if suffix == ".pdf":
            text = _pdf_text(name, data)
        elif suffix == ".docx":
            text, meta = _docx_text(name, data)
        else:
            return finish(name, _decode(name, data), suffix), meta
    except LoadError:
        raise
    except Exception as exc:  # any parser failure is this file's error, not the update's
        raise LoadError(name, f"cannot be read as {_KIND.get(suffix, 'text')} ({_brief(exc)})") from None
    return finish(name, text, suffix), meta


def finish(name: object, text: str, suffix: str) -> str:
    """Decoded text of type ``suffix`` as a bulletin's text: the main text of HTML, line ends and
    control characters cleaned, the text limit checked, and refused when nothing is left."""
    if suffix in (".html", ".htm"):
        try:
            text = _html_text(text)
        except Exception as exc:  # lxml and bs4 on hostile markup
            raise LoadError(name, f"cannot be read as HTML ({_brief(exc)})") from None
    text = strip_controls(text.replace("\r\n", "\n").replace("\r", "\n"))
    _check_size(name, len(text.encode("utf-8")))
    if not text.strip():
        raise LoadError(name, "holds no text" + (" (only scripts, styles or navigation)" if suffix != ".txt" else ""))
    return text


def strip_controls(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (tab and newline stay),
    so that nothing loaded can move a cursor, clear a screen or retitle a window."""
    return _CONTROLS.sub("", _BREAKS.sub("\n", _ESCAPES.sub("", text)))


def _check_size(path: object, size: int) -> None:
    """One limit on extracted text whatever the format (a small PDF can extract to megabytes)."""
    if size > MAX_TEXT_BYTES:
        raise LoadError(path, f"is too large for one bulletin (its text passes {MAX_TEXT_BYTES // 2**20} MiB);"
                              " split it into bulletins")


def _brief(exc: BaseException) -> str:
    """An exception as a short single line: its type and the start of its message."""
    message = " ".join(strip_controls(str(exc)).split())
    return f"{type(exc).__name__}: {message[:80]}" if message else type(exc).__name__


def _decode(path: object, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError(path, "is binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            path, f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


_DROP = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg")
_BLOCK = re.compile(r"^(p|div|h[1-6]|li|tr|br|section|article|main|blockquote|pre|table|ul|ol|dd|dt|figcaption)$")


def _html_text(html: str) -> str:
    """Main text of an HTML page: no scripts, styles or navigation; blocks on their own lines."""
    import warnings

    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, XMLParsedAsHTMLWarning

    for quiet in (MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning):  # advice for programmers, on stderr
        warnings.filterwarnings("ignore", category=quiet)
    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo"]}):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    for node in root.find_all(string=True):  # a line break in HTML source is a space (but in <pre>)
        if type(node) is NavigableString and "\n" in node and not node.find_parent("pre"):
            node.replace_with(re.sub(r"\s*\n\s*", " ", node))
    for tag in root.find_all(_BLOCK):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = root.get_text()
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _pdf_text(path: object, data: bytes) -> str:
    """Text layer of a PDF, pages separated by blank lines; refused as soon as it passes the text limit."""
    import io
    import logging

    try:
        from pypdf import PdfReader
    except ImportError:
        raise LoadError(path, "PDF support is not installed: pip install 'stdnews[pdf]'") from None

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its errors quote the file's bytes raw, on stderr
    pages: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(path, "is an encrypted PDF; decrypt it first")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise LoadError(path, f"has {len(reader.pages)} pages (limit {MAX_PDF_PAGES}); split it into bulletins")
        size = 0
        for page in reader.pages:
            text = strip_controls(page.extract_text() or "").strip()
            size += len(text.encode("utf-8")) + 2
            _check_size(path, size)
            pages.append(text)
    except LoadError:
        raise
    except Exception as exc:  # pypdf's PyPdfError family (LimitReachedError for a length or decompression
        # bomb, PdfReadError, ...) and the plain Python errors it raises on odd input
        raise LoadError(path, f"is a broken PDF ({_brief(exc)})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise LoadError(path, "PDF has no text layer (scanned?); run OCR first")
    return text + "\n"


def _docx_text(path: object, data: bytes) -> tuple[str, dict[str, str]]:
    """Paragraphs and table cells of a Word document in document order (a table row per line, its cells
    joined by ' | '), and its title from the core properties when it has one."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(item.file_size for item in archive.infolist())
    except zipfile.BadZipFile:
        raise LoadError(path, "is not a .docx file (not a zip archive); save it again as a Word document") from None
    if inflated > MAX_DOCX_INFLATED:
        raise LoadError(path, f"unpacks to {inflated / 2**20:.0f} MiB (limit {MAX_DOCX_INFLATED // 2**20} MiB);"
                              " split it into bulletins")
    try:
        import docx
    except ImportError:
        raise LoadError(path, "DOCX support is not installed: pip install 'stdnews[docx]'") from None
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx: PackageNotFoundError, ValueError (not a Word file), KeyError
        raise LoadError(path, f"is a broken .docx ({_brief(exc)})") from None
    blocks: list[str] = []
    size = 0
    for block in _docx_blocks(document):
        if block := block.strip():
            blocks.append(block)
            size += len(block.encode("utf-8")) + 2
            _check_size(path, size)
    title = " ".join(strip_controls(document.core_properties.title or "").split())
    return "\n\n".join(blocks) + "\n", ({"title": title[:200]} if title else {})


def _docx_blocks(container: object) -> Iterator[str]:
    """The text of ``container``'s paragraphs and tables (a document or a table cell), in order."""
    from docx.table import Table

    for item in container.iter_inner_content():  # type: ignore[attr-defined]
        if not isinstance(item, Table):
            yield item.text
            continue
        for row in item.rows:
            cells, seen = [], []
            for cell in row.cells:
                # a merged cell is listed once per column it spans; python-docx has no public test for it
                if any(cell._tc is tc for tc in seen):
                    continue
                seen.append(cell._tc)
                if text := " ".join(" ".join(_docx_blocks(cell)).split()):
                    cells.append(text)
            if cells:
                yield " | ".join(cells)
