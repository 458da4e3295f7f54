"""``stdnews digest``: what updates added, grouped by the standard or committee each story is
about and by story (near-duplicate articles of several bulletins merged, every source listed),
each with its lead sentence and citation; as text, Markdown or JSON. Built from the index's own
update log (``Index.whats_new``), the identifiers and organisations stored on each chunk, and the
near-duplicate pairs of ``index.dedupe``; the chat window's What's new panel filters the same way."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from assistant.evidence import sentences
from assistant.facets import facets, normalise_orgs
from assistant.retrieve import Filters
from index import dedupe
from index.identifiers import find_identifiers, find_orgs
from index.indexer import Index
from index.split import BYLINE

OTHER = "Other news"  # the group of stories that name no standard or committee
_PLAIN_TC = re.compile(r"^TC \d+$")
_SENTENCE_END = re.compile(r"[.!?][\"”’)]?$")

Key = tuple[str, int]  # (doc_id, article index)


@dataclass
class Source:
    """One bulletin's report of a story: its citation, and whether an update in the window added it."""

    doc_id: str
    article: int
    title: str
    publisher: str | None
    date: str | None
    url: str | None
    new: bool = True
    added_at: float | None = None


@dataclass
class Story:
    """One story: its headline and lead sentence (from its first new report), what it names, its sources."""

    title: str
    lead: str
    date: str | None
    standards: list[str]  # labels, the group's own first
    orgs: list[str]
    sources: list[Source]
    keys: list[str] = field(default_factory=list, repr=False)  # identifier keys, same order as ``standards``


@dataclass
class Group:
    label: str  # a standard or committee as the bulletins write it, or OTHER
    kind: str  # standard | committee | other
    stories: list[Story]


@dataclass
class Digest:
    since: str | None  # the window: added on or after this day, else the last update that added anything
    last_update_at: float | None
    standards: list[str]  # the filters as given
    orgs: list[str]
    groups: list[Group]
    unseen: list[str] = field(default_factory=list)  # watched identifiers no indexed passage names yet
    left_out: int = 0  # older articles of the window not in this digest (``build``'s ``newest``)

    @property
    def stories(self) -> list[Story]:
        return [s for g in self.groups for s in g.stories]

    def window(self) -> str:
        if self.since:
            return f"since {self.since}"
        when = f" ({_when(self.last_update_at)})" if self.last_update_at else ""
        return f"in the last update that added anything{when}"

    def about(self) -> str:
        """The filters in words: 'about ISO/IEC 30145 or JTC 1, naming ITU' (empty: none)."""
        parts = [f"about {' or '.join(self.standards)}" if self.standards else "",
                 f"naming {' or '.join(self.orgs)}" if self.orgs else ""]
        return ", ".join(p for p in parts if p)

    def to_json(self) -> dict[str, Any]:
        stories = self.stories
        return {"since": self.since, "last_update_at": _iso(self.last_update_at),
                "filters": {"standards": self.standards, "orgs": self.orgs},
                "stories": len(stories), "articles": sum(sum(s.new for s in st.sources) for st in stories),
                "groups": [{"label": g.label, "kind": g.kind,
                            "stories": [{**{k: v for k, v in asdict(st).items() if k not in ("sources", "keys")},
                                         "sources": [{**asdict(src), "added_at": _iso(src.added_at)}
                                                     for src in st.sources]}
                                        for st in g.stories]}
                           for g in self.groups]}


def build(index: Index, since: str | None = None, standards: Sequence[str] = (), orgs: Sequence[str] = (),
          newest: int | None = None) -> Digest:
    """The digest of what was added ``since`` (YYYY-MM-DD; None: the last update that added anything),
    narrowed to stories naming any of ``standards`` (any spelling) and any of ``orgs`` (named in the text or
    as publisher); with ``newest``, of only that many of the newest articles (``left_out``: how many more).
    A bad date, standard or organisation is a ``UserError`` with one line."""
    wanted_keys = list(Filters.parse(standards=[s for s in standards if s.strip()]).standards)
    wanted_orgs = normalise_orgs(list(orgs), [f.value for f in facets(index)[1]] if orgs else None)
    added = index.whats_new(since)  # newest first
    left_out = max(0, len(added) - newest) if newest is not None else 0
    added = added[: len(added) - left_out]
    bulletins = {b["doc_id"]: b for b in index.db.bulletins(doc_ids={i["doc_id"] for i in added})}
    new: dict[Key, dict[str, Any]] = {}
    for item in added:
        arts = bulletins[item["doc_id"]]["articles"]
        art = next((a for a in arts if a["title"] == item["title"]), None)
        if art is not None:  # an article retitled since: no longer in the index as it was added
            new.setdefault((item["doc_id"], art["index"]), item)
    facts = _facts(index, new)
    stories = [_story(index, members, new, facts, bulletins) for members in _stories(index, new)]
    stories = [s for s in stories if (not wanted_keys or any(_watched(k, wanted_keys) for k in s.keys))
               and (not wanted_orgs or set(s.orgs) & set(wanted_orgs))]
    last_at = max((a["added_at"] for a in added), default=None) if not since else None
    unseen = [s.strip() for s in standards if s.strip() and not any(
        index.db.conn.execute("SELECT 1 FROM chunks WHERE json_extract(meta, '$.std_keys') LIKE ?"
                              " OR json_extract(meta, '$.std_keys') LIKE ? LIMIT 1",
                              (f"%|{i.key}|%", f"%|{i.key}-%")).fetchone() for i in find_identifiers(s))]
    return Digest(since, last_at, [s.strip() for s in standards if s.strip()], wanted_orgs,
                  _group(stories, wanted_keys), unseen, left_out)


def _watched(key: str, wanted: Sequence[str]) -> str | None:
    """The watched identifier ``key`` falls under: itself, or the standard whose part it is (30145-3 under 30145)."""
    return next((w for w in wanted if key == w or key.startswith(w + "-")), None)


def _facts(index: Index, keys: dict[Key, Any]) -> dict[Key, tuple[dict[str, str], set[str]]]:
    """Per article: {identifier key: label} and the organisations its chunks name."""
    out: dict[Key, tuple[dict[str, str], set[str]]] = {k: ({}, set()) for k in keys}
    for doc_id in sorted({d for d, _ in keys}):
        for chunk in index.db.chunks_of(doc_id):
            if (doc_id, chunk["article"]) not in out:
                continue
            idents, names = out[(doc_id, chunk["article"])]
            for label in _unpack(chunk.get("standards")):
                found = find_identifiers(label)
                if found and _better(label, idents.get(found[0].key)):
                    idents[found[0].key] = label
            names.update(_unpack(chunk.get("orgs")))
    return out


def _stories(index: Index, new: dict[Key, Any]) -> list[list[Key]]:
    """The new articles as stories: near-duplicates (``index.dedupe`` pairs) together, the earliest dated
    report first (it gives the headline and lead); an article without duplicates is a story of its own."""
    neighbours = index.db.dup_neighbours(new)
    pairs = [(*a, *b) for a, others in neighbours.items() for b in others if b in new and a < b]
    order = {k: i for i, k in enumerate(new)}
    grouped = [sorted(g, key=lambda k: (new[k].get("date") or "9999", order[k])) for g in dedupe.groups(pairs)]
    placed = {k for g in grouped for k in g}
    return sorted(grouped + [[k] for k in new if k not in placed], key=lambda g: order[g[0]])


def _story(index: Index, members: list[Key], new: dict[Key, dict[str, Any]],
           facts: dict[Key, tuple[dict[str, str], set[str]]], bulletins: dict[str, dict[str, Any]]) -> Story:
    earlier = set().union(*(index.db.dup_neighbours(members).values())) - set(new)
    sources = [Source(d, a, new[(d, a)]["title"], new[(d, a)].get("publisher"), new[(d, a)].get("date"),
                      bulletins[d].get("url"), True, new[(d, a)]["added_at"]) for d, a in members]
    info = index.db.article_info(earlier)
    urls = index.db.urls(d for d, _ in info)
    sources += sorted((Source(i["doc_id"], a, i["title"], i["publisher"] or None, i["date"] or None,
                              urls.get(d), False) for (d, a), i in info.items()),
                      key=lambda s: s.date or "", reverse=True)
    idents: dict[str, str] = {}
    orgs: set[str] = set()
    for k in members:
        for key, label in facts[k][0].items():
            if _better(label, idents.get(key)):
                idents[key] = label
        orgs |= facts[k][1] | set(find_orgs(new[k].get("publisher") or ""))
    idents = {k: v for k, v in idents.items() if not (_PLAIN_TC.match(v) and any(
        other.endswith("/" + v) for other in idents.values()))}  # SAC/TC 28 is also found as plain TC 28
    first = sources[0]
    text = _article_text(index, first.doc_id, first.article)
    ranked = sorted(idents, key=lambda key: _rank(idents[key], first.title, text))
    dates = [s.date for s in sources if s.new and s.date]
    return Story(first.title, lead_sentence(text, first.title) or new[members[0]].get("lead") or "",
                 max(dates) if dates else None, [idents[k] for k in ranked], sorted(orgs, key=str.lower), sources,
                 ranked)


def _group(stories: list[Story], wanted: list[str]) -> list[Group]:
    """Each story once, under the watched identifier it names first (no filter: the one it is most about)."""
    groups: dict[str, Group] = {}
    for story in stories:
        key = next((k for w in wanted for k in story.keys if _watched(k, [w])), story.keys[0] if story.keys else None)
        if key is None:
            groups.setdefault("", Group(OTHER, "other", [])).stories.append(story)
            continue
        label = story.standards[story.keys.index(key)]
        kind = find_identifiers(label)[0].kind
        groups.setdefault(key, Group(label, kind, [])).stories.append(story)
        i = story.keys.index(key)  # the group's own identifier first among what the story names
        story.keys.insert(0, story.keys.pop(i))
        story.standards.insert(0, story.standards.pop(i))
    for g in groups.values():
        g.stories.sort(key=lambda s: s.date or "", reverse=True)
    order = {k: i for i, k in enumerate(wanted)}
    return sorted(groups.values(), key=lambda g: (g.kind == "other", order.get(_watched(_key(g.label) or "", wanted)
                                                                                   or "", len(order)),
                                                  -len(g.stories), g.label.lower()))


def _rank(label: str, title: str, text: str) -> tuple[object, ...]:
    """Named in the headline first, then mentioned more often, standards before committees, then earlier."""
    key = find_identifiers(label)[0]
    pos = text.find(label)
    return (label not in title and key.key not in title, -text.count(label), key.kind != "standard",
            pos if pos >= 0 else len(text), label)


def lead_sentence(text: str, title: str = "") -> str:
    """The article's first real sentence: not its headline, a heading, a byline or a label line; a sentence
    ends in . ! or ? (or runs to 12 words in lower case, a standfirst without its full stop)."""
    body = _unwrap(text)
    pieces = sentences(body)
    head = re.sub(r"^#+\s*", "", title).strip().lower()
    i = 0
    while i < len(pieces):
        s = pieces[i]
        while s.endswith(";") and i + 1 < len(pieces):  # sentences() also cuts at semicolons
            i += 1
            s = f"{s} {pieces[i]}"
        i += 1
        plain = re.sub(r"^#+\s*", "", s).strip()
        if not plain or plain.lower() == head or s.startswith("#") or BYLINE.match(plain):
            continue
        words = plain.split()
        if (_SENTENCE_END.search(plain) and len(words) >= 5) or (len(words) >= 12 and not _title_case(words)):
            return plain
    return ""


def _unwrap(text: str) -> str:
    """Hard-wrapped paragraphs joined into lines (a line cut mid-sentence is no sentence of its own);
    headings, list items and lines that end a sentence keep their line break."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        wrapped = (line.strip() and nxt and not re.search(r"[.!?:;]$", line.strip())
                   and not re.match(r"[•·\-–*#\d]", nxt) and (nxt[0].islower() or len(line) >= 60))
        out.append(line.rstrip() + (" " if wrapped else "\n"))
    return "".join(out)


def _title_case(words: list[str]) -> bool:
    content = [w for w in words if len(w) > 3]
    return bool(content) and sum(w[0].isupper() or w[0].isdigit() for w in content) >= 0.5 * len(content)


def _article_text(index: Index, doc_id: str, article: int) -> str:
    b = index.db.bulletin(doc_id)
    art = next((a for a in b["articles"] if a["index"] == article), None) if b else None
    return b["text"][art["start"]:art["end"]] if b and art else ""


def _better(label: str, best: str | None) -> bool:
    """Prefer a spelling with its body ("ISO/IEC 30145-3" over "30145-3"), then the longer."""
    return best is None or (" " in label, len(label), label) > (" " in best, len(best), best)


def _key(label: str) -> str | None:
    found = find_identifiers(label)
    return found[0].key if found else None


def _unpack(packed: object) -> list[str]:
    return [v for v in str(packed or "").split("|") if v]


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts).isoformat(timespec="seconds") if ts else None


def panel_items(d: Digest) -> list[dict[str, Any]]:
    """One entry per story for the chat window's What's new panel (``ui_render.whats_new_html``): its first
    new report with the story's lead, and its other reports under ``also``; newest first."""
    out = []
    for st in d.stories:
        first = next(s for s in st.sources if s.new)
        out.append({"doc_id": first.doc_id, "title": st.title, "date": first.date, "publisher": first.publisher,
                    "url": first.url, "lead": st.lead, "added_at": first.added_at,
                    "also": [asdict(s) for s in st.sources if s is not first]})
    return sorted(out, key=lambda a: (a["date"] or "", a["added_at"] or 0), reverse=True)
