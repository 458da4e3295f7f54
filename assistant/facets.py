"""What the indexed passages name (standards, committees, organisations), from the counts
the chunk table keeps (``ChunkDB.label_counts``), for the chat window's filter lists; and org names as users type them
turned into the names the index stores."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from index.errors import UserError
from index.identifiers import find_identifiers, find_orgs
from index.indexer import Index

_PLAIN_TC = re.compile(r"^TC \d+$")


@dataclass(frozen=True)
class Facet:
    """One choice of a filter list: ``value`` goes to ``Filters.parse``; ``count`` passages carry it."""

    value: str
    count: int
    kind: str  # standard | committee | org

    @property
    def choice(self) -> tuple[str, str]:
        return f"{self.value} ({self.count})", self.value


def facets(index: Index) -> tuple[list[Facet], list[Facet]]:
    """(standards and committees, organisations) that the indexed passages name, with passage counts.

    One entry per identifier key (the labelled spelling wins over a bare number); a plain
    ``TC n`` that only ever appears as one ``SAC/TC n`` is left out, it would select the same passages."""
    labels: Counter[str] = Counter()
    orgs: Counter[str] = Counter()
    for kind, label, n in index.db.label_counts():  # kept by the chunk table's writes: no scan of the chunks
        (labels if kind == "standards" else orgs)[label] += n
    by_key: dict[str, tuple[str, str, int]] = {}  # key -> (label, kind, passages)
    for label, n in labels.items():
        found = find_identifiers(label)
        if not found:
            continue
        key, kind = found[0].key, found[0].kind
        best, _, total = by_key.get(key, (label, kind, 0))
        if _better(label, labels[label], best, labels[best]):
            best = label
        by_key[key] = (best, kind, total + n)
    standards = [Facet(label, n, kind) for label, kind, n in by_key.values()]
    counts = {f.value: f.count for f in standards}
    standards = [f for f in standards if not _PLAIN_TC.match(f.value) or not any(
        v.endswith("/" + f.value) and n == f.count for v, n in counts.items())]
    standards.sort(key=lambda f: (f.kind != "standard", _natural(f.value)))
    return standards, sorted((Facet(o, n, "org") for o, n in orgs.items()), key=lambda f: f.value.lower())


def normalise_orgs(raw: list[str] | None, known: list[str] | None = None) -> list[str]:
    """Organisation names as the index stores them ("iso" and "International Organization for
    Standardization" both give "ISO"); a name that is none of them is a clear error."""
    out: list[str] = []
    for value in raw or ():
        value = value.strip()
        if not value:
            continue
        hit = next((k for k in known or () if k.lower() == value.lower()), None)
        names = [hit] if hit else find_orgs(value) or find_orgs(value.upper())
        if not names:
            raise UserError(f"organisation {value!r} is not one I recognise (e.g. ISO, IEC, ITU, SAC, CESI, ANSI)")
        out.extend(n for n in names if n not in out)
    return out


def _better(label: str, n: int, best: str, best_n: int) -> bool:
    """Prefer a spelling with its body ("ISO/IEC 30145-3" over "30145-3"), then the commoner one."""
    return (" " in label, n, label) > (" " in best, best_n, best)


def _natural(text: str) -> list[object]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]
