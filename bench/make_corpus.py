"""Deterministic large corpus for scale runs: the seed bulletins plus N generated
newsletters of several articles each, written from the seed articles' sentences
with the organisations, standard numbers, committees, people and dates varied.

    python bench/make_corpus.py 635 --out bench/out/corpus-10k   # about 10k chunks
    python bench/make_corpus.py 125 --out bench/out/corpus-2k    # about 2k chunks

Same N and seed, same bytes. Paragraphs mix sentences of several seed articles, so
articles are distinct stories, except ~3% syndicated repeats (near-duplicate news, as
real bulletins have). The generated bulletins use the SESEC newsletter
layout the splitter knows (headline alone between blank lines, paragraphs, a
"By <author> on <day> <Month> <year>" byline), so every stage does real work.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.catalog import meta_for, read_catalog, scan  # noqa: E402
from index.load import load_text  # noqa: E402
from index.split import split_articles  # noqa: E402

SEED = ROOT / "corpus"
MONTHS = ("January February March April May June July August September October November December").split()

ORGS = ["ISO", "IEC", "ITU", "ANSI", "SAC", "CEN", "CENELEC", "ETSI", "DIN", "BSI", "AFNOR", "JISC", "KATS",
        "SCC", "Standards Australia", "ABNT", "BIS", "SIS", "NEN", "UNI", "SNV", "ASI", "DS", "NSAI", "IEEE",
        "IETF", "W3C", "OGC", "ASTM", "NIST", "CESI", "CAICT", "CNIS", "CCSA", "TTA", "ARIB", "TTC", "SESEC"]
PUBLISHERS = ["ISO", "IEC", "ITU", "ANSI", "SESEC", "CEN-CENELEC", "ETSI", "BSI", "DIN", "SAC", "JISC", "NIST"]
TOPICS = ["Smart Cities", "Artificial Intelligence", "Cybersecurity", "Intelligent Manufacturing", "Blockchain",
          "Internet of Things", "Digital Twins", "Data Governance", "Electric Vehicles", "Energy Storage",
          "Quantum Computing", "Smart Grids", "Water Management", "Personal Information Protection",
          "Autonomous Driving", "Sustainable Finance", "Cloud Computing", "Biometrics", "Hydrogen", "5G Networks"]
HEADLINES = [
    "{org} Publishes New Standard on {topic}",
    "{ident} on {topic} Approved by {org}",
    "{org} and {org2} Launch Joint Work on {topic}",
    "Plenary Meeting of {org} {committee} Held in {city}",
    "{org} Releases English Version of {ident}",
    "First {topic} Standard Project Led by {country} Approved in {org}",
    "{committee} Holds Web Conference on {topic}",
    "Call for Experts on {topic} Issued by {org}",
    "{org} Announces Roadmap for {topic} Standardisation",
    "New {committee} on {topic} Established",
]
CITIES = ["Beijing", "Geneva", "Tokyo", "Berlin", "Paris", "London", "Seoul", "Ottawa", "Sydney", "Brasilia",
          "New Delhi", "Stockholm", "Madrid", "Rome", "Vienna", "Singapore", "Nairobi", "Cairo", "Toronto"]
COUNTRIES = ["China", "Germany", "Japan", "France", "Korea", "Canada", "Brazil", "India", "Sweden", "Kenya",
             "Italy", "Spain", "Australia", "the United Kingdom", "the United States", "Singapore"]
GIVEN = ["Haley", "Tian", "Zhao", "Anna", "Marco", "Yuki", "Priya", "Lars", "Chen", "Fatima", "Diego", "Sofia",
         "Kwame", "Elena", "Hiroshi", "Amara", "Jonas", "Mei", "Omar", "Lucia"]
FAMILY = ["WU", "Wang", "Li", "Schmidt", "Rossi", "Tanaka", "Sharma", "Nilsson", "Okafor", "Garcia", "Dubois",
          "Kim", "Silva", "Novak", "Ahmed", "Moreau", "Jensen", "Park", "Costa", "Fischer"]

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"(])")
_IDENT = re.compile(r"\b(?:ISO/IEC|ISO|IEC|GB/T|GB|EN|ITU-T [A-Z])[ .]?\d{3,5}(?:-\d{1,4})*(?:[:-](?:19|20)\d\d)?\b")
_COMMITTEE = re.compile(r"\b(?:JTC ?1/(?:SC|WG) ?\d+|JTC ?1|TC ?\d{2,3}|SC ?\d{1,2}|WG ?\d{1,2}|SG ?\d{1,2}|"
                        r"Study Group \d+|Working Group \d+)\b")
_DATE = re.compile(rf"\b\d{{1,2}} (?:{'|'.join(MONTHS)})(?: (?:19|20)\d\d)?\b|\b(?:{'|'.join(MONTHS)}) (?:19|20)\d\d\b")
_YEAR = re.compile(r"\b20[12]\d\b")
_ORG = re.compile(r"\b(?:ISO|IEC|ITU|ANSI|SAC|SAMR|CESI|CAICT|CNIS|CCSA|CEN|CENELEC|ETSI|MIIT|DCRI|Huawei)\b")


def seed_articles() -> list[list[str]]:
    """Sentences of every seed article (headline dropped), in text order."""
    files, _ = scan(SEED)
    catalog = read_catalog(SEED)
    out = []
    for doc_id, path in files.items():
        text = load_text(path)
        meta = meta_for(doc_id, text, catalog.get(doc_id))
        for art in split_articles(text, meta.title, meta.date):
            body = text[art.start:art.end]
            paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
            sents = [s for p in paras for s in _SENT.split(p) if len(s.split()) >= 6 and not s.startswith("By ")]
            if len(sents) >= 4:
                out.append(sents)
    return out


class Generator:
    """Writes bulletins from a random stream seeded once; same seed, same corpus."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.articles = seed_articles()
        self.orgs: dict[str, str] = {}
        self.stories: list[str] = []

    def date(self, year: int | None = None) -> tuple[int, int, int]:
        r = self.rng
        return year or r.randint(2015, 2025), r.randint(1, 12), r.randint(1, 28)

    def ident(self) -> str:
        r = self.rng
        kind = r.choice(["ISO/IEC", "ISO", "IEC", "GB/T", "EN", "ITU-T Y."])
        num = f"{r.randint(1000, 39999)}" if kind != "ITU-T Y." else f"{r.randint(1000, 4999)}"
        part = f"-{r.randint(1, 9)}" if r.random() < 0.4 else ""
        year = f":{r.randint(2015, 2025)}" if kind in ("ISO/IEC", "ISO", "IEC") and r.random() < 0.3 else (
            f"-{r.randint(2015, 2025)}" if kind == "GB/T" else "")
        sep = "" if kind.endswith(".") else " "
        return f"{kind}{sep}{num}{part}{year}"

    def committee(self) -> str:
        r = self.rng
        return r.choice([f"JTC 1/SC {r.randint(2, 45)}", f"JTC 1/WG {r.randint(1, 15)}", f"ISO/TC {r.randint(10, 340)}",
                         f"IEC TC {r.randint(1, 130)}", f"TC{r.randint(100, 600)}", f"ITU-T SG {r.randint(2, 20)}"])

    def vary(self, text: str, year: int) -> str:
        r = self.rng
        orgs = self.orgs  # one mapping per article: the same body is renamed the same way

        def org(m: re.Match[str]) -> str:
            return orgs.setdefault(m.group(0), r.choice(ORGS))

        def day(m: re.Match[str]) -> str:
            y, mo, d = self.date(r.choice([year, year, year - 1]))
            has_year = bool(re.search(r"\d{4}$", m.group(0)))
            if m.group(0)[0].isdigit():
                return f"{d} {MONTHS[mo - 1]}" + (f" {y}" if has_year else "")
            return f"{MONTHS[mo - 1]} {y}"

        text = _IDENT.sub(lambda m: self.ident(), text)
        text = _COMMITTEE.sub(lambda m: self.committee(), text)
        text = _DATE.sub(day, text)
        text = _YEAR.sub(lambda m: str(r.choice([year, year - 1, year + 1])), text)
        return _ORG.sub(org, text)

    def headline(self) -> str:
        r = self.rng
        orgs = r.sample(ORGS, 2)
        return r.choice(HEADLINES).format(org=orgs[0], org2=orgs[1], topic=r.choice(TOPICS), ident=self.ident(),
                                          committee=self.committee(), city=r.choice(CITIES),
                                          country=r.choice(COUNTRIES))

    def article(self, year: int) -> str:
        """Headline, two to five paragraphs (each two consecutive sentences of a seed article
        and up to two from others), byline. About 3% are syndicated: an earlier story again, as several
        bulletins carry the same press release."""
        r = self.rng
        _, mo, d = self.date(year)
        byline = f"By {r.choice(GIVEN)} {r.choice(FAMILY)} on {d} {MONTHS[mo - 1]} {year}"
        if self.stories and r.random() < 0.03:
            return f"{r.choice(self.stories)}\n\n{byline}\n"
        paras = []
        self.orgs = {}
        for _ in range(r.randint(2, 5)):
            source = r.choice(self.articles)
            start = r.randrange(max(1, len(source) - 1))
            sents = source[start : start + 2] + [r.choice(r.choice(self.articles)) for _ in range(r.randint(0, 2))]
            paras.append(self.vary(" ".join(sents), year))
        story = f"{self.headline()}\n\n\n" + "\n\n".join(paras)
        self.stories.append(story)
        return f"{story}\n\n{byline}\n"

    def bulletin(self, i: int) -> tuple[str, str, dict[str, str]]:
        r = self.rng
        year, mo, d = self.date()
        publisher = r.choice(PUBLISHERS)
        topic = r.choice(TOPICS)
        title = f"{publisher} standards news: {topic}, {MONTHS[mo - 1]} {year}"
        body = "\n".join(self.article(year) for _ in range(r.randint(3, 6)))
        doc_id = f"bulletin-{year}-{mo:02d}-{i:05d}"
        entry = {"title": title, "publisher": publisher, "date": f"{year}-{mo:02d}-{d:02d}", "language": "en"}
        return doc_id, body, entry


def toml_entry(doc_id: str, entry: dict[str, str]) -> str:
    lines = [f'["{doc_id}"]'] + [f'{k} = "{v}"' for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def make_corpus(n: int, out: Path, seed: int = 7, with_seed: bool = True) -> list[str]:
    """Write the corpus to ``out`` (replaced); returns the generated doc_ids."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    catalog = []
    if with_seed:
        for f in SEED.iterdir():
            if f.is_file():
                shutil.copyfile(f, out / f.name)
        catalog.append((SEED / "catalog.toml").read_text())
    gen = Generator(seed)
    ids = []
    for i in range(n):
        doc_id, body, entry = gen.bulletin(i)
        (out / f"{doc_id}.txt").write_text(body)
        catalog.append(toml_entry(doc_id, entry))
        ids.append(doc_id)
    (out / "catalog.toml").write_text("\n".join(catalog))
    return ids


def one_bulletin(out_file: Path, seed: int = 99991) -> tuple[str, dict[str, str]]:
    """A single fresh bulletin (for the add-one timing); returns doc_id and catalog entry."""
    doc_id, body, entry = Generator(seed).bulletin(99999)
    out_file.write_text(body)
    return doc_id, entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="generated bulletins (about 15 chunks each)")
    ap.add_argument("--out", type=Path, default=None, help="folder to write (default bench/out/corpus-N)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-seed-corpus", action="store_true", help="leave out the seed bulletins")
    args = ap.parse_args()
    out = args.out or ROOT / "bench" / "out" / f"corpus-{args.n}"
    ids = make_corpus(args.n, out, args.seed, not args.no_seed_corpus)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {len(ids)} generated bulletins to {out} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
