"""Standard numbers, committee names and organisations, recognised whatever the
spelling and normalised to one key: ``ISO/IEC 30145-3:2020``, ``ISO IEC 30145
part 3`` and ``30145-3`` all give ``30145-3``; ``JTC 1/WG 11`` and ``JTC1/WG11``
give ``JTC 1/WG 11``. Keys match; labels are what the UI shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_BODY = r"ISO/IEC/IEEE|ISO/IEC|ISO\s+IEC|ISO/TS|ISO/TR|ISO|IEC/TS|IEC/TR|IEC|IEEE|EN|BS|DIN|GB/T|GB/Z|GB|ITU-T|ITU-R"
_NUM = r"\d{3,6}(?:-\d{1,4})*"
_STANDARD = re.compile(
    rf"\b(?P<body>{_BODY})\s*(?:Recommendation\s+)?(?P<num>[A-Z]\.\d{{3,4}}(?:\.\d+)?|{_NUM})"
    r"(?:\s*(?:part|pt\.?)\s*(?P<part>\d{1,3}))?(?::\s?(?P<year>\d{2,4}))?",
    re.I,
)
_ITU_REC = re.compile(r"(?<![\w.])(?P<num>[A-Z]\.\d{3,4}(?:\.\d+)?)\b")  # Y.4900, H.264
_BARE = re.compile(r"(?<![\w/.-])(?P<num>\d{4,6}(?:-\d{1,4})+)(?::(?P<year>\d{4}))?(?![\w-])")
# Each committee pattern with the words (case folded) one of which a text must hold to match:
# most texts hold none, and the substring test is far cheaper than the search.
_COMMITTEES = [
    (("jtc",), re.compile(r"\bJTC\s*-?\s*1\s*/\s*(SC|WG)\s*(\d{1,3})\b", re.I),
     lambda m: f"JTC 1/{m[1].upper()} {int(m[2])}"),
    (("jtc",), re.compile(r"\bJTC\s*-?\s*1\s+(?:Working Group|WG)\s*(\d{1,3})\b", re.I),
     lambda m: f"JTC 1/WG {int(m[1])}"),
    (("jtc",), re.compile(r"\bJTC\s*-?\s*1\b(?!\s*/)", re.I), lambda m: "JTC 1"),
    (("tc",), re.compile(r"\b(SAC|ISO|IEC|CEN|CENELEC)\s*/\s*TC\s*(\d{1,4})\b", re.I),
     lambda m: f"{m[1].upper()}/TC {int(m[2])}"),
    (("tc",), re.compile(r"(?<![/\w])TC\s*(\d{1,4})\b"), lambda m: f"TC {int(m[1])}"),
    (("sg", "study group"), re.compile(r"\b(?:ITU-T\s+)?(?:SG\s*|Study Group\s+)(\d{1,2})\b"),
     lambda m: f"SG {int(m[1])}"),
    (("sdg",), re.compile(r"\bSDG\s*(\d{1,2})\b"), lambda m: f"SDG {int(m[1])}"),
    (("syc",), re.compile(r"\bSyC\s+Smart\s+Cities\b", re.I), lambda m: "SyC Smart Cities"),
]
_DIGIT = re.compile(r"\d")
_ORGS = [
    ("ISO", r"\bISO\b|International Organization for Standardization"),
    ("IEC", r"\bIEC\b|International Electrotechnical Commission"),
    ("ITU", r"\bITU(?:-[TR])?\b|International Telecommunication Union"),
    ("SAC", r"\bSAC\b|Standardi[sz]ation Administration of China"),
    ("SAMR", r"\bSAMR\b"),
    ("CESI", r"\bCESI\b|China Electronics Standardi[sz]ation Institute"),
    ("ANSI", r"\bANSI\b|American National Standards Institute"),
    ("CEN-CENELEC", r"\bCEN(?:-|\s+and\s+)?CENELEC\b|\bCENELEC\b|\bCEN\b"),
    ("SESEC", r"\bSESEC\b"),
    ("MIIT", r"\bMIIT\b|Ministry of Industry and Information Technology"),
    ("CAICT", r"\bCAICT\b"),
    ("IEEE", r"\bIEEE\b"),
    ("ETSI", r"\bETSI\b"),
    ("UN-Habitat", r"\bUN-Habitat\b"),
    ("World Standards Cooperation", r"World Standards Cooperation"),
]


def _leads(rx: str) -> tuple[str, ...] | None:
    """The words each top-level alternative of ``rx`` starts with ("ISO", "International"): a text
    holding none of them cannot match, and a substring test is ~10x cheaper than the search (the
    facets of every chunk of a build are searched for all of these: 11% of its main thread at 50k
    chunks). None when an alternative does not start with a word: then the search always runs."""
    alts, depth, cur = [], 0, ""
    for ch in rx:
        depth += (ch == "(") - (ch == ")")
        if ch == "|" and depth == 0:
            alts.append(cur)
            cur = ""
        else:
            cur += ch
    words = [re.match(r"(?:\\b)?([A-Za-z]+)", alt) for alt in [*alts, cur]]
    return tuple(m[1] for m in words) if all(words) else None  # type: ignore[index]


_ORG_RES = [(name, _leads(rx), re.compile(rx)) for name, rx in _ORGS]
_BODY_LABEL = {"ISO IEC": "ISO/IEC"}


@dataclass(frozen=True)
class Identifier:
    """``key`` matches across spellings; ``label`` is the display form."""

    key: str
    label: str
    kind: str  # standard | committee


def _standard(body: str | None, num: str, part: str | None, year: str | None) -> Identifier:
    body_up = re.sub(r"\s+", " ", body.upper()) if body else None
    body_up = _BODY_LABEL.get(body_up or "", body_up)
    pieces = num.upper().split("-")
    if len(pieces) > 1 and re.fullmatch(r"(19|20)\d\d", pieces[-1]) and len(pieces[0]) >= 4:
        pieces = pieces[:-1]  # GB/T 35273-2020: the year, not a part
    if part:
        pieces.append(str(int(part)))
    key = "-".join(pieces)
    if body_up is None and re.fullmatch(r"[A-Z]\.\d+(?:\.\d+)?", key):
        body_up = "ITU-T"
    # A bare number keeps its own spelling as label ("35273-2020"), so the label parses back.
    label = f"{body_up} {key}" if body_up else num.upper()
    return Identifier(key, label, "standard")


def find_identifiers(text: str) -> list[Identifier]:
    """Every standard and committee named in ``text``, once each, in order of first mention."""
    return list(_found(text))


@lru_cache(maxsize=512)
def _found(text: str) -> tuple[Identifier, ...]:
    """Kept for the last texts asked: an update asks twice per chunk (its facets, then its keyword
    tokens, of the same text)."""
    return _scan(text)


def _scan(text: str, skip: bool = True) -> tuple[Identifier, ...]:
    """``skip``: leave out the searches a text cannot match (a standard's number needs a digit,
    a committee one of its words, ``_COMMITTEES``), the same results (a property test compares
    both) for less work: the chunk facets were 14% of a build's main thread."""
    found: dict[str, Identifier] = {}
    taken: list[tuple[int, int]] = []
    digits = not skip or _DIGIT.search(text) is not None
    folded = text.casefold() if skip else ""  # casefold, not lower: re.I also matches "ſ" for "s"
    for m in _STANDARD.finditer(text) if digits else ():
        ident = _standard(m["body"], m["num"], m["part"], m["year"])
        found.setdefault(ident.key, ident)  # bare mentions below never replace a labelled one
        taken.append(m.span())
    for rx in (_BARE, _ITU_REC) if digits else ():
        for m in rx.finditer(text):
            if re.fullmatch(r"(19|20)\d\d-\d{2,4}", m["num"]):  # a span of years, "2019-2020"
                continue
            if not any(s <= m.start() < e for s, e in taken):
                ident = _standard(None, m["num"], None, None)
                found.setdefault(ident.key, ident)
    for needs, rx, canon in _COMMITTEES:
        if skip and not any(w in folded for w in needs):
            continue
        for m in rx.finditer(text):
            label = canon(m)
            found.setdefault(label, Identifier(label, label, "committee"))
            if "/TC " in label:  # SAC/TC 28 is also found as plain TC 28
                plain = label.split("/", 1)[1]
                found.setdefault(plain, Identifier(plain, plain, "committee"))
    return tuple(found.values())


def find_orgs(text: str) -> list[str]:
    """Organisations named in ``text`` (ISO, IEC, ITU, SAC, CESI, ANSI, CEN-CENELEC, ...)."""
    return [name for name, leads, rx in _ORG_RES
            if (leads is None or any(w in text for w in leads)) and rx.search(text)]


def keys(text: str) -> set[str]:
    return {i.key for i in find_identifiers(text)}


def pack(values: list[str] | set[str]) -> str:
    """``|a|b|``: a string Chroma can store and SQL can match with LIKE '%|a|%'."""
    return "|" + "|".join(sorted(values)) + "|" if values else ""
