"""Read a bulletin file (.txt .md .html .pdf) into plain text, or say why not."""

from __future__ import annotations

import re
from pathlib import Path

from index.errors import LoadError

SUPPORTED = (".txt", ".md", ".html", ".htm", ".pdf")
MAX_BYTES = 25 * 1024 * 1024  # any file (a PDF carries layout and images)
MAX_TEXT_BYTES = 8 * 1024 * 1024  # a text bulletin larger than this is a dump, not a bulletin


def load_text(path: Path, suffix: str | None = None) -> str:
    """Return the main text of ``path``; raise LoadError with a one-line reason.
    ``suffix`` overrides the file's own (an upload waits under a temporary name)."""
    suffix = (suffix or path.suffix).lower()
    if suffix not in SUPPORTED:
        raise LoadError(path, f"unsupported file type '{suffix or '(none)'}' (use {', '.join(SUPPORTED)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot be read ({exc.strerror or exc})") from None
    limit = MAX_BYTES if suffix == ".pdf" else MAX_TEXT_BYTES
    if len(data) > limit:
        raise LoadError(path, f"is too large for one bulletin ({len(data) / 2**20:.0f} MiB, limit"
                              f" {limit // 2**20} MiB); split it into bulletins")
    if not data.strip():
        raise LoadError(path, "is empty" if not data else "holds only white space")
    if suffix == ".pdf":
        text = _pdf_text(path, data)
    else:
        raw = _decode(path, data)
        text = _html_text(raw) if suffix in (".html", ".htm") else raw
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoadError(path, "holds no text" + (" (only scripts, styles or navigation)" if suffix != ".txt" else ""))
    return text


def _decode(path: Path, data: bytes) -> str:
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
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo"]}):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    for tag in root.find_all(_BLOCK):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = root.get_text()
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _pdf_text(path: Path, data: bytes) -> str:
    """Text layer of a PDF, pages separated by blank lines."""
    import io
    import logging

    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise LoadError(path, "PDF support is not installed: pip install 'stdnews[pdf]'") from None

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(path, "is an encrypted PDF; decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise LoadError(path, f"is a broken PDF ({type(exc).__name__}: {str(exc)[:80]})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text.strip():
        raise LoadError(path, "PDF has no text layer (scanned?); run OCR first")
    return text + "\n"
