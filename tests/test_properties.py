"""Property tests: splitting, chunking and identifier parsing never crash, chunks
cover the text in order, and offsets point at the chunk's own text."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.chunk import chunk_bulletin
from index.identifiers import find_identifiers
from index.model import BulletinMeta
from index.split import split_articles

META = BulletinMeta(doc_id="doc", title="Bulletin", publisher="ISO", date="2020-10-19")
# Text made of the pieces bulletins are made of: words, identifiers, bylines, headlines, blank lines.
PIECES = st.sampled_from([
    "ISO/IEC 30145-3:2020", "GB/T 35273-2020", "JTC 1/WG 11", "SAC/TC28", "Y.4900", "By Haley WU on 9 October",
    "By A B on 31 February 2020", "\n\n", "\n", "\n\n\n", ". ", "Smart City Standardisation Working Group",
    "• bullet item;", "On 7 August 2020, the standard was released.", "  ", "\t", "é中文", "#", "[1]",
])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=40)), max_size=60).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
@example("\n\nISO/IEC 30145-3:2020ISO/IEC 30145-3:2020\n\nBy Haley WU on 9 October")  # blank lines, then a headline
def test_articles_tile_the_text_in_order(text: str) -> None:
    articles = split_articles(text, "Bulletin", "2020-10-19")
    assert articles and articles[0].start == 0 and articles[-1].end == len(text)
    for a, b in zip(articles, articles[1:], strict=False):
        assert a.end == b.start and a.start < a.end
    assert [a.index for a in articles] == list(range(len(articles)))
    for a in articles:
        assert a.date is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", a.date)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.integers(min_value=20, max_value=400))
def test_chunks_cover_the_text_in_order(text: str, max_chars: int) -> None:
    articles = split_articles(text, "Bulletin", "2020-10-19")
    chunks = chunk_bulletin(META, text, articles, max_chars=max_chars, min_chars=max_chars // 4)
    covered = [False] * len(text)
    last_end = 0
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.text.strip() == c.text and c.text
        assert c.start >= last_end, "chunks out of order or overlapping"
        last_end = c.end
        art = articles[c.article]
        assert art.start <= c.start and c.end <= art.end
        for i in range(c.start, c.end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace()), "text left out of every chunk"
    assert len({c.chunk_id for c in chunks}) == len(chunks)


@settings(max_examples=500, deadline=None)
@given(TEXT)
def test_identifier_parsing_is_total_and_stable(text: str) -> None:
    for ident in find_identifiers(text):
        assert ident.key and ident.label
        again = {i.key for i in find_identifiers(f" {ident.label} ")}
        assert ident.key in again, f"{ident.label!r} does not parse back to {ident.key!r}"


ID_TEXT = st.lists(st.one_of(st.sampled_from([
    "JTC 1/SC 41", "JTC1/WG11", "jtc 1 working group 7", "ISO/TC 268", "SAC/TC 28", "TC 260", "SG 20",
    "ITU-T Study Group 5", "SDG 11", "SyC Smart Cities", "ſyc smart cities", "ISO/IEC 30145-3:2020", "Y.4900",
    "GB/T 35273-2020", "2019-2020", "30145-3", " ", "\n", "/", "-", ".",
]), st.text(max_size=12)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(ID_TEXT)
def test_identifiers_found_are_those_a_plain_search_finds(text: str) -> None:
    """_scan skips the searches a text cannot match (no digit, none of a committee's words)."""
    from index.identifiers import _scan

    assert _scan(text) == _scan(text, skip=False)


ORG_TEXT = st.lists(st.one_of(st.sampled_from([
    "ISO", "ISO/IEC", "ISOs", "IEC", "ITU-T", "ITU-R", "International Organization for Standardization",
    "International Electrotechnical Commission", "International Telecommunication Union", "SAC/TC 28",
    "Standardization Administration of China", "China Electronics Standardisation Institute", "CEN and CENELEC",
    "CEN-CENELEC", "CENELEC", "UN-Habitat", "World Standards Cooperation", "American National Standards Institute",
    "Ministry of Industry and Information Technology", "IEEE", " ", "\n", "-", "/",
]), st.text(max_size=12)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(ORG_TEXT)
def test_organisations_found_are_those_a_plain_search_finds(text: str) -> None:
    """find_orgs skips an organisation's search when none of its leading words is in the text."""
    from index.identifiers import _ORGS, find_orgs

    assert find_orgs(text) == [name for name, rx in _ORGS if re.search(rx, text)]
