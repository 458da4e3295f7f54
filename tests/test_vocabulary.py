"""No word list in the answerer or the retriever names a term only our corpora use: the
assistant must work on bulletins it has never seen. Every word written in a string of
assistant/ and index/ code (docstrings aside) is checked against the rare words of the
project's own bulletins; the only ones allowed are the standards bodies and committee
names that are the product's domain (index/identifiers.py), listed here with why."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from assistant.lexicon import zipf

ROOT = Path(__file__).resolve().parent.parent
CORPORA = [ROOT / "corpus", ROOT / "evals" / "sets" / "standards-corpus"]
# The domain, not our corpus: international, regional and national standards bodies and committee
# types a standards-news reader filters by (index/identifiers.py), wherever their news comes from.
DOMAIN = {w.lower() for w in """ISO IEC ITU SAC SAMR CESI ANSI CEN CENELEC SESEC MIIT CAICT IEEE ETSI Habitat
    JTC SyC SDG FDIS DIS Electrotechnical Standardization Standardisation Telecommunication""".split()}
_WORD = re.compile(r"[A-Za-z][A-Za-z]{2,}")


def _code_strings(path: Path) -> list[str]:
    """String literals of a module, without its docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
            and not n.value.startswith("$")]  # Chroma's query operators ("$lte")


def _corpus_rare_words() -> set[str]:
    """Words of our own bulletins that general English hardly uses: names, places, companies."""
    words: set[str] = set()
    for folder in CORPORA:
        for f in folder.rglob("*"):
            if f.suffix in {".txt", ".md", ".html"}:
                words |= {w.lower() for w in _WORD.findall(f.read_text(encoding="utf-8", errors="replace"))}
    return {w for w in words if zipf(w) < 3.5}


def test_no_code_vocabulary_names_what_only_our_corpus_holds() -> None:
    rare = _corpus_rare_words()
    assert len(rare) > 150  # the check has something to check against (names such as the seed's authors)
    found: dict[str, set[str]] = {}
    for package in ("assistant", "index"):
        for path in sorted((ROOT / package).glob("*.py")):
            for text in _code_strings(path):
                for w in _WORD.findall(text):
                    if w.lower() in rare and w.lower() not in DOMAIN:
                        found.setdefault(w, set()).add(path.name)
    assert not found, f"code names terms of our own bulletins: {found}"


def test_the_check_catches_a_corpus_name() -> None:
    """The companies the old answerer's regex named are rare words of our corpus: the test above sees them."""
    rare = _corpus_rare_words()
    assert {"tencent", "huawei"} <= rare
