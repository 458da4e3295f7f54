"""The fitted weights the assistant ships: fusion weights by question class, the
sentence-choice model and the refusal model. ``stdnews eval fit`` writes the file
(assistant/weights.json, with the command that produced it); this only reads it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

WEIGHTS_FILE = Path(__file__).with_name("weights.json")
CLASSES = ("id", "number", "name", "plain")  # question classes BM25 is weighed by (question.keyword_class)


@dataclass(frozen=True)
class Fusion:
    """Weighted reciprocal rank fusion: ``dense / (rrf_k + rank)`` plus the BM25 weight of the question's class."""

    rrf_k: int = 60
    dense: float = 1.0
    bm25: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(CLASSES, 1.0))

    def bm25_for(self, kind: str) -> float:
        return float(self.bm25.get(kind, self.bm25.get("plain", 1.0)))


@dataclass(frozen=True)
class Logistic:
    """p = sigmoid(intercept + sum(coef * (x - mean) / scale)); features by name, missing ones count 0."""

    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float = 0.5

    def logit(self, x: Mapping[str, float]) -> float:
        return self.intercept + sum(c * (float(x.get(f, 0.0)) - m) / s
                                    for f, c, m, s in zip(self.features, self.coef, self.mean, self.scale, strict=True))

    def prob(self, x: Mapping[str, float]) -> float:
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, self.logit(x)))))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "coef": [round(c, 6) for c in self.coef],
                "intercept": round(self.intercept, 6), "mean": [round(m, 6) for m in self.mean],
                "scale": [round(s, 6) for s in self.scale], "threshold": round(self.threshold, 6)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Logistic:
        n = len(doc["features"])
        return cls(tuple(doc["features"]), tuple(doc["coef"]), float(doc["intercept"]),
                   tuple(doc.get("mean") or [0.0] * n), tuple(doc.get("scale") or [1.0] * n),
                   float(doc.get("threshold", 0.5)))


@dataclass(frozen=True)
class Weights:
    fusion: Fusion
    sentence: Logistic
    refusal: Logistic
    command: str = ""


def parse(doc: Mapping[str, Any]) -> Weights:
    f = doc["fusion"]
    fusion = Fusion(int(f["rrf_k"]), float(f["dense"]), {k: float(v) for k, v in f["bm25"].items()})
    return Weights(fusion, Logistic.from_json(doc["sentence"]), Logistic.from_json(doc["refusal"]),
                   str(doc.get("command", "")))


@lru_cache(maxsize=4)
def load(path: Path = WEIGHTS_FILE) -> Weights:
    """The shipped weights (read once per process)."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{path}: the fitted weights cannot be read ({exc}); "
                           "reinstall, or refit with 'stdnews eval fit'") from None
