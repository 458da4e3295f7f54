"""E-mail newsletters as bulletins: an .eml file is one message, an .mbox file one bulletin per
message. A message's HTML part (its main text, through the loader's HTML path), else its plain
text part, is a bulletin titled by its Subject, published by its sender, dated by its Date header;
each attachment of a supported type is a bulletin of its own. Parsed by the standard library
(``email`` with ``policy.default``, ``mailbox``); whatever a message holds, a failure is one line."""

from __future__ import annotations

import codecs
import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from index.errors import LoadError
from index.load import ATTACHABLE, _brief, check_bytes, finish, load_data, strip_controls
from index.model import Loaded, Part

MAX_MESSAGES = 5000  # an mbox past this is an archive to split, not a batch of newsletters
_SINGLE_BYTE = ("ascii", "iso8859", "latin", "cp125", "windows", "koi8", "mac")
_STRUCTURE = ("NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect",
              "MissingHeaderBodySeparatorDefect", "FirstHeaderLineIsContinuationDefect")


def mail_parts(path: Path, data: bytes, suffix: str) -> Loaded:
    """The bulletins of an .eml (keys: "" for the message, an attachment's name for each attachment)
    or an .mbox (keys: "1", "2", ... for its messages, "2#name" for their attachments)."""
    out = Loaded([])
    if suffix == ".eml":
        _message(path, data, "", "", out)
    else:
        messages = _mbox(path)
        if not messages:
            raise LoadError(path, "holds no messages (no line starts with 'From '); is it an mbox file?")
        if len(messages) > MAX_MESSAGES:
            raise LoadError(path, f"holds {len(messages)} messages (limit {MAX_MESSAGES}); split the mailbox")
        for n, raw in enumerate(messages, 1):
            _message(path, raw, str(n), f"message {n}", out)
    if not out.parts:
        reasons = [why for _, why in out.failed]
        if suffix == ".mbox" and len(reasons) > 1:
            raise LoadError(path, f"none of its {len(reasons)} messages can be read (first: {reasons[0]})")
        raise LoadError(path, reasons[0] if reasons else "holds no message")
    return out


def _mbox(path: Path) -> list[bytes]:
    import mailbox

    try:
        box = mailbox.mbox(path, create=False)
        try:
            return [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()
    except Exception as exc:  # mailbox's own errors and OSError
        raise LoadError(path, f"cannot be read as a mailbox ({_brief(exc)})") from None


def _message(path: Path, data: bytes, key: str, label: str, out: Loaded) -> None:
    """One message's bulletins into ``out``: its body under ``key``, its attachments beside it."""
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:  # the parser registers defects rather than raising; in case it does
        out.failed.append((key, f"{label}: cannot be parsed ({_brief(exc)})" if label
                           else f"cannot be read as an e-mail ({_brief(exc)})"))
        return
    meta = _headers(msg)
    if label and meta.get("title"):
        label = f"{label} ({meta['title'][:60]!r})"
    where = f"{label}: " if label else ""
    try:
        text, note = _body(path, msg)
        out.parts.append(Part(key, text, meta))
        if note:
            out.notes.append(f"{where}its body {note}")
    except LoadError as exc:
        out.failed.append((key, where + exc.reason))
    inherited = {k: v for k, v in meta.items() if k != "title"}  # an attachment is the sender's, of that date
    names: set[str] = set()
    for name, part in _attachments(msg):
        stem = _stem(name, names)
        sub = f"{key}#{stem}" if key else stem
        try:
            text, own, note = _attachment(path, part, Path(name).suffix.lower())
            out.parts.append(Part(sub, text, {**inherited, **own}))
            if note:
                out.notes.append(f"{where}attachment '{name}' {note}")
        except LoadError as exc:
            out.failed.append((sub, f"{where}attachment '{name}': {exc.reason}"))


def _headers(msg: Any) -> dict[str, str]:
    """Title (Subject), publisher (the sender's display name, else address) and ISO date (Date)."""
    meta: dict[str, str] = {}
    if subject := _clean(_header(msg, "subject")):
        meta["title"] = subject[:200]
    try:
        sender = _header(msg, "from")
        first = sender.addresses[0] if sender is not None and sender.addresses else None
        publisher = _clean(first.display_name or first.addr_spec) if first else ""
    except Exception:  # an unparseable address is no publisher
        publisher = ""
    if publisher and publisher != "<>":
        meta["publisher"] = publisher[:200]
    try:
        when = _header(msg, "date")
        stamp = getattr(when, "datetime", None)
        if stamp is not None and 1900 <= stamp.year <= 9999:
            meta["date"] = stamp.date().isoformat()
    except Exception:  # a Date that is no date leaves the date unknown
        pass
    return meta


def _header(msg: Any, name: str) -> Any:
    try:
        return msg[name]
    except Exception:  # header parsing of hostile values can raise from deep inside email
        return None


def _clean(value: Any) -> str:
    return " ".join(strip_controls(str(value)).split()) if value is not None else ""


def _body(path: Path, msg: Any) -> tuple[str, str | None]:
    """The text of the HTML part (else the plain one); a caveat about its charset, if any."""
    try:
        candidates = [msg.get_body(preferencelist=(kind,)) for kind in ("html", "plain")]
    except Exception as exc:
        raise LoadError(path, f"has a broken MIME structure ({_brief(exc)})") from None
    parts = [p for p in candidates if p is not None]
    if not parts:
        defects = sorted({type(d).__name__ for p in _walk(msg) for d in p.defects} & set(_STRUCTURE))
        if defects:
            raise LoadError(path, f"has a broken MIME structure ({', '.join(defects)}); no message body can be found")
        raise LoadError(path, "has no message body (no text or HTML part)")
    last: LoadError | None = None
    for part in parts:  # an HTML part of only images or scripts: the plain one may still say it
        suffix = ".html" if part.get_content_subtype() == "html" else ".txt"
        raw, note = _decoded(part)
        if suffix == ".txt":
            raw = _unflowed(part, raw)
        if not raw.strip():
            last = LoadError(path, "has an empty message body")
            continue
        try:
            return finish(path, raw, suffix), note
        except LoadError as exc:
            last = exc
    assert last is not None
    raise last


def _walk(msg: Any) -> Iterator[Any]:
    try:
        yield from msg.walk()
    except Exception:
        yield msg


def _attachments(msg: Any) -> Iterator[tuple[str, Any]]:
    """(file name, part) of the attachments whose type the loader reads; others (images) are skipped."""
    try:
        parts = list(msg.iter_attachments())
    except Exception:  # a broken structure: the body's error already says so
        return
    for part in parts:
        try:
            name = _clean(part.get_filename())
        except Exception:
            continue
        if name and Path(name).suffix.lower() in ATTACHABLE:
            yield name.replace("/", "-").replace("\\", "-"), part


def _stem(name: str, taken: set[str]) -> str:
    """The attachment's part of its bulletin's doc_id: its name without extension, unique in the message."""
    stem = re.sub(r"[^\w.\-]+", "-", Path(name).stem).strip(".-")[:80] or "attachment"
    unique, n = stem, 2
    while unique in taken:
        unique, n = f"{stem}-{n}", n + 1
    taken.add(unique)
    return unique


def _attachment(path: Path, part: Any, suffix: str) -> tuple[str, dict[str, str], str | None]:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        raise LoadError(path, f"cannot be decoded ({_brief(exc)})") from None
    if not isinstance(data, bytes):
        raise LoadError(path, "is not a file (a nested message part)")
    if suffix in (".pdf", ".docx"):
        text, meta = load_data(path, data, suffix)
        return text, meta, None
    check_bytes(path, data, suffix)
    raw, note = _decoded(part, data)
    return finish(path, _unflowed(part, raw) if suffix in (".txt", ".md") else raw, suffix), {}, note


def _unflowed(part: Any, text: str) -> str:
    """Plain text sent ``format=flowed`` (RFC 3676) with its soft line breaks joined: a line that ends
    in a space goes on in the next (not the signature separator), a leading space is stuffing."""
    try:
        if str(part.get_param("format", "")).lower() != "flowed":
            return text
        delsp = str(part.get_param("delsp", "")).lower() == "yes"
    except Exception:
        return text
    lines, current = [], ""
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line[1:] if line.startswith(" ") else line
        if line.endswith(" ") and line != "-- ":
            current += line[:-1] if delsp else line
        else:
            lines.append(current + line)
            current = ""
    return "\n".join([*lines, current] if current else lines)


def _decoded(part: Any, data: bytes | None = None) -> tuple[str, str | None]:
    """A text part's payload decoded by its declared charset, never failing: an unknown charset, or
    bytes that are not what the charset says, are read as UTF-8 (else replaced), with a caveat saying so."""
    if data is None:
        try:
            data = part.get_payload(decode=True) or b""
        except Exception:
            data = b""
        if not isinstance(data, bytes):
            data = b""
    try:
        declared = part.get_content_charset()
    except Exception:
        declared = None
    codec = None
    if declared:
        try:
            codec = codecs.lookup(declared).name
        except (LookupError, ValueError):  # unknown, or not even a name (a NUL in it)
            codec = None
    utf8 = _utf8(data)
    shown = _clean(declared)[:40]  # as the caveat quotes it
    if codec:
        if utf8 is not None and codec.startswith(_SINGLE_BYTE) and not data.isascii():
            return utf8, f"declares charset '{shown}' but is UTF-8; read as UTF-8"
        try:
            return data.decode(codec), None
        except UnicodeDecodeError:
            return data.decode(codec, "replace"), f"is not valid {shown}; undecodable bytes were replaced"
        except Exception:  # a codec that is not a text encoding ('base64', 'rot13'): LookupError, binascii
            pass
    if utf8 is not None:
        return utf8, f"declares the unknown charset '{shown}'; read as UTF-8" if declared else None
    # the fallback of web browsers too (WHATWG Encoding); its few undefined bytes are replaced
    said = f"declares the unknown charset '{shown}'" if declared else "declares no charset"
    return data.decode("cp1252", "replace"), f"{said} and is not UTF-8; read as Windows-1252"


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
