"""What the retrieved passages hold for a question, as numbers: features of each
sentence (is it the answer?) and of the evidence as a whole (is the answer there at
all?). The extractive answerer combines them with the fitted models of
assistant/weights.json; ``stdnews eval fit`` fits those models on the same features.
Only general vocabularies live here (months, number words, honorifics); names and
ordinary words are told apart by word frequency (assistant.lexicon)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from assistant.lexicon import zipf
from assistant.question import Question
from assistant.retrieve import Passage
from index.identifiers import find_identifiers
from index.identifiers import keys as identifier_keys
from index.tokenize import normalise, tokens

_ABBREV = "".join(rf"(?<!\b{a})" for a in (r"Dr\.", r"Mr\.", r"Ms\.", r"Mrs\.", r"Prof\.", r"No\.", r"St\.", r"vs\.",
                                             r"a\.m\.", r"p\.m\.", r"U\.S\."))
_SPLIT = re.compile(rf"{_ABBREV}(?<=[.!?;])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])|\n+")
_BULLET = re.compile(r"^[\s•·\-–*]+")
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DAY = re.compile(rf"\b\d{{1,2}} {_MONTH}\b|\b{_MONTH} \d{{1,2}}\b")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_DATES = re.compile(rf"{_DAY.pattern}|\b{_MONTH}(?: (?:19|20)\d\d)?\b|{_YEAR.pattern}")
_COUNT = re.compile(r"\b\d[\d,.]*\b%?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                    r"twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozens|hundreds|thousands)\b", re.I)
_CAP_PAIR = re.compile(r"\b(?:(?:Dr|Mr|Ms|Mrs|Prof)\.? )?([A-Z][a-z]+|[A-Z]{2,}) ([A-Z][a-z]+|[A-Z]{2,})\b")
_ORG = re.compile(r"\([A-Z]{2,}[A-Za-z-]*\)|\b[A-Z]{3,}\b|\b(?:Institute|Academy|Administration|Association|"
                  r"Committee|Commission|Ministry|Organi[sz]ation|Group|Union|Council|Company|Corporation|Agency|"
                  r"University|Party|Inc|Ltd)\b")
_PLACE = re.compile(r"\b(?:in|at|from|to|of) (?:the )?[A-Z][a-z]+")
_KIND_PHRASES = [  # first match wins; what the question asks for
    (r"\be-?mail\b", "email"),
    (r"\b(?:meeting|zoom) id\b|\b(?:recommendation|standard|reference) number\b", "code"),
    (r"\bwhat time\b|\bat what time\b", "time"),
    (r"\bwhich (?:organi[sz]ations?|bod(?:y|ies)|institut\w+|compan(?:y|ies)|firms?|administration)\b", "org"),
    (r"\b(?:what|which) (?:exact )?(?:day|date)\b|\bon which day\b|\bexact date\b", "day"),
    (r"\b(?:what|which) month\b", "month"),
    (r"\b(?:what|which|in what|in which) year\b", "year"),
    (r"\bhow (?:many|much)\b|\bwhat (?:share|percentage|number)\b", "number"),
    (r"\bwho (?:led|initiated|organi[sz]ed|hosted|proposed|developed|published|released)\b", "who"),
    (r"\bwho\b|\bwhose\b|\bwhat is the name of\b", "person"),
    (r"\bwhen\b", "date"),
    (r"\b(?:which|what) (?:city|country|countries|cities|place)\b|\bwhere\b", "place"),
]
ORDINARY_ZIPF = 5.2  # a capitalised word this common ("City", "Group", "East") is not a name by itself

SENTENCE_FEATURES = ("sem", "lex", "spec", "kind_ok", "prior", "psem", "located", "inside", "newer", "lead",
                     "heading", "novel", "pcover", "rare_lex", "next_to_best", "best_in_p")
EVIDENCE_FEATURES = ("best", "best_sem", "top_dense", "dense_margin", "cover", "cover_top", "rare_cover",
                     "rarest_absent", "best_rare_lex", "bm25_top", "spec_cover", "spec_absent", "num_absent",
                     "ids_absent", "kind_missing", "asks_kind", "inside_any", "n_terms")


def question_kind(text: str) -> str | None:
    lower = text.lower()
    for rx, kind in _KIND_PHRASES:
        if re.search(rx, lower):
            return kind
    return None


def _ordinary(word: str, context: str) -> bool:
    """An ordinary word written with a capital (a heading, a title): very common in English,
    or written in lower case elsewhere in the same passage (``context`` as written, case kept)."""
    return zipf(word) >= ORDINARY_ZIPF or re.search(rf"\b{re.escape(word.lower())}\b", context) is not None


def has_kind(kind: str | None, sentence: str, q: Question, context: str = "") -> bool:
    """Does ``sentence`` hold the kind of thing the question asks for (beyond what it already says)?
    ``context`` is the passage as written, to tell capitalised ordinary words from names."""
    if kind is None:
        return True
    s = sentence
    for term in q.specific:  # a year or name the question itself gives is no answer
        s = re.sub(rf"(?<![\w-]){re.escape(term)}(?![\w-])", " ", s)
    if kind == "email":
        return bool(re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", s))
    if kind == "code":
        return bool(find_identifiers(s)) or bool(re.search(r"\b\d{6,}\b", s))
    if kind == "time":
        return bool(re.search(r"\b\d{1,2}(?::\d\d)?\s*(?:a\.m\.|p\.m\.|am\b|pm\b|h\b)", s, re.I))
    if kind == "day":
        return bool(_DAY.search(s))
    if kind == "month":
        return bool(re.search(_MONTH, s))
    if kind == "year":
        return bool(_YEAR.search(s))
    if kind == "date":
        return bool(_DATES.search(s))
    if kind == "number":
        s = _DATES.sub(" ", s)
        for ident in find_identifiers(s):
            s = s.replace(ident.label, " ").replace(ident.key, " ")
        return bool(_COUNT.search(s))
    if kind in ("person", "who", "org"):
        people = [m for m in _CAP_PAIR.finditer(s) if not (m[1].isupper() and m[2].isupper())  # "CEN JTC"
                  and not (_ordinary(m[1], context) or _ordinary(m[2], context))]
        return bool(people) if kind == "person" else bool(people) or bool(_ORG.search(s))
    if kind == "place":
        return bool(_PLACE.search(s))
    return True


def sentences(text: str) -> list[str]:
    """Sentences (and bullet items) of a passage, cleaned for quoting; a name line on its own
    ("Jana Zabinski") is joined to the line after it ("Senior Director, ...")."""
    out: list[str] = []
    carry = ""
    for raw in _SPLIT.split(text):
        s = re.sub(r"\s+", " ", _BULLET.sub("", raw)).strip()
        if not s:
            continue
        if carry:
            s, carry = f"{carry}, {s}", ""
        if len(s.split()) < 4:
            if 2 <= len(s.split()) <= 3 and all(w[0].isupper() for w in s.split()) and s[-1] not in ".!?;:":
                carry = s  # a name on its own line, e.g. above a job title
            continue
        out.append(s)
    return out


def term_weights(q: Question) -> dict[str, float]:
    """Numbers count double; an identifier counts once (its pieces not again): it locates
    the passage, while the answering sentence often says "the group" or "the standard"."""
    weights = {}
    for t in q.terms:
        if t.startswith("id:"):
            weights[t] = 1.0
        elif any(ch.isdigit() for ch in t):
            weights[t] = 0.0 if any(t in i[3:] for i in q.terms if i.startswith("id:")) else 2.0
        else:
            weights[t] = 1.0
    return weights


def coverage(term: str, text_lower: str, toks: set[str]) -> float:
    """How much of a specific term ("East Coast", "6.0-magnitude") the evidence holds: 1 when written
    as such, else the share of its words present (as written, or as the same stemmed token)."""
    if normalise(term).lower() in text_lower:
        return 1.0
    words = [w for w in re.split(r"[\s/–-]+", term) if w.strip(".,")]
    if not words:
        return 0.0
    def present(word: str) -> bool:
        w = word.strip(".,").lower()
        return re.search(rf"(?<![\w.]){re.escape(w)}(?![\w])", text_lower) is not None or any(
            t in toks for t in tokens(word) if not t.startswith("id:"))
    return sum(present(w) for w in words) / len(words)


_WORD = re.compile(r"[^\W\d_]+(?:['’][a-z]+)?")


def _rarity(question: str) -> dict[str, float]:
    """The question's content words as BM25 tokens, each weighted by how rare the word is in English
    (7 - Zipf frequency): "catafalque" counts far more than "week" when checking the evidence."""
    out: dict[str, float] = {}
    for raw in _WORD.findall(question):
        toks = tokens(raw)
        if toks and not toks[0].startswith("id:"):
            out[toks[0]] = max(out.get(toks[0], 0.0), max(0.0, 7.0 - zipf(raw)))
    return out


@dataclass
class Candidate:
    """A sentence of passage ``passage`` (1-based) with its features and fitted score."""

    passage: int
    text: str
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0

    @property
    def kind_ok(self) -> bool:
        return self.features.get("kind_ok", 0.0) > 0


Similar = Callable[[str, list[str]], list[float]]


def sentence_candidates(q: Question, full: Question, kind: str | None, passages: Sequence[Passage],
                        similar: Similar, latest: bool = False, embed_top: int = 24) -> list[Candidate]:
    """Every sentence of the passages with its features (SENTENCE_FEATURES); ``similar`` gives the
    model's cosine of the question with each text, computed for the ``embed_top`` most lexical ones."""
    weights = term_weights(full)
    own = set(q.terms)
    total = sum(weights[t] * (1.0 if t in own else 0.5) for t in weights) or 1.0
    dates = sorted({p.date for p in passages if p.date})
    wanted = identifier_keys(q.text) | identifier_keys(full.text)
    rarity = _rarity(q.text)
    rare_total = sum(rarity.values()) or 1.0
    asked = set(q.terms)
    cands: list[Candidate] = []
    for i, p in enumerate(passages, 1):
        context = p.text
        ptoks = set(tokens(p.text))
        pcover = sum(w for t, w in rarity.items() if t in ptoks) / rare_total
        first = len(cands)
        located = float(bool(wanted & identifier_keys(f"{p.title}\n{p.text}")))
        newer = (dates.index(p.date) + 1) / len(dates) if latest and p.date and dates else 0.0
        for j, s in enumerate(sentences(p.text)):
            toks = set(tokens(s))
            lower = s.lower()
            spec = [coverage(t, lower, toks) for t in q.specific]
            cands.append(Candidate(i, s, {
                "lex": sum(weights[t] * (1.0 if t in own else 0.5) for t in weights if t in toks) / total,
                "spec": sum(spec) / len(spec) if spec else 1.0,
                "kind_ok": float(has_kind(kind, s, q, context)),
                "prior": 1.0 / (1 + 0.25 * (i - 1)),
                "psem": float(p.dense or 0.0),
                "located": located,
                "inside": float(p.in_window),
                "newer": newer,
                "lead": float(j == 0),
                "heading": float(s[-1] not in ".!?;:)”\"" and len(s.split()) <= 14),
                "novel": len(toks - asked) / max(1, len(toks)),  # an answer adds words the question lacks
                "pcover": pcover,
                "rare_lex": sum(w for t, w in rarity.items() if t in toks) / rare_total,
                "sem": 0.0,
            }))
        mine = cands[first:]
        if mine:  # answers often sit in, or right after, the sentence that matches the question best
            best = max(range(len(mine)), key=lambda j: mine[j].features["lex"])
            for j, c in enumerate(mine):
                c.features["next_to_best"] = float(abs(j - best) == 1)
                c.features["best_in_p"] = float(j == best)
    # Embed only the most promising sentences: the lexical score is cheap, the model is not.
    ranked = sorted(cands, key=lambda c: (-c.features["lex"], c.passage))[:embed_top]
    for c, sem in zip(ranked, similar(q.text, [c.text for c in ranked]), strict=True):
        c.features["sem"] = sem
    return cands


def evidence_features(question: str, q: Question, kind: str | None, passages: Sequence[Passage],
                      cands: Sequence[Candidate]) -> tuple[dict[str, float], list[str]]:
    """Features of the evidence as a whole (EVIDENCE_FEATURES), and the question's specific terms
    (identifiers, numbers, names) that no passage holds, for the refusal's explanation."""
    joined = "\n".join(p.text for p in passages)
    lower = normalise(joined).lower()
    toks = set(tokens(joined))
    wanted = find_identifiers(question)
    have = identifier_keys(joined)
    ids_missing = [i.label for i in wanted if i.key not in have]
    labels = " ".join(i.label for i in wanted) + " " + " ".join(i.key for i in wanted)
    spec = {t: coverage(t, lower, toks) for t in q.specific if t not in labels}
    absent = ids_missing + [t for t, v in spec.items() if v == 0.0]
    weights = term_weights(q)
    total = sum(weights.values()) or 1.0
    top = passages[0]
    top_toks = set(tokens(f"{top.title}\n{top.text}"))
    scored = sorted(cands, key=lambda c: -c.score)
    usable = [c for c in scored if c.kind_ok]
    rarity = _rarity(question)
    rare_total = sum(rarity.values()) or 1.0
    dense = sorted((p.dense or 0.0 for p in passages), reverse=True) + [0.0]
    return {
        "dense_margin": float(dense[0] - dense[1]),
        "rare_cover": sum(w for t, w in rarity.items() if t in toks) / rare_total,
        "best_rare_lex": max((c.features["rare_lex"] for c in cands), default=0.0),
        "bm25_top": max((p.bm25 or 0.0 for p in passages), default=0.0) / max(1, len(q.terms)),
        "rarest_absent": max((w for t, w in rarity.items() if t not in top_toks), default=0.0) / 7.0,
        "best": (usable or scored)[0].score if scored else 0.0,
        "best_sem": max((c.features["sem"] for c in cands), default=0.0),
        "top_dense": float(top.dense or 0.0),
        "cover": sum(w for t, w in weights.items() if t in toks) / total,
        "cover_top": sum(w for t, w in weights.items() if t in top_toks) / total,
        "spec_cover": sum(spec.values()) / len(spec) if spec else 1.0,
        "spec_absent": float(sum(v == 0.0 for t, v in spec.items() if not any(ch.isdigit() for ch in t))),
        "num_absent": float(sum(v == 0.0 for t, v in spec.items() if any(ch.isdigit() for ch in t))),
        "ids_absent": float(len(ids_missing)),
        "kind_missing": float(kind is not None and not usable),  # asks for a person, a date... none is there
        "asks_kind": float(kind is not None),
        "inside_any": float(any(p.in_window for p in passages)),
        "n_terms": float(len(q.terms)),
    }, absent
