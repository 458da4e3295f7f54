"""The answer half of ``stdnews eval fit``: the sentence-choice and refusal models of the
extractive answerer, fitted by logistic regression (scikit-learn) on the features of
assistant/evidence.py, and judged fold by fold with the real answerer on held-out
questions. Stacked honestly: the refusal model's "best sentence" feature comes from a
sentence model that did not see the question, and each fold's threshold is chosen on
the other folds' held-out predictions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.compose import ExtractiveAnswerer
from assistant.evidence import EVIDENCE_FEATURES, SENTENCE_FEATURES, Candidate, evidence_features, question_kind
from assistant.question import analyse
from assistant.retrieve import Passage
from assistant.weights import Fusion, Logistic, Weights
from evals import metrics


@dataclass
class Prepared:
    """One question's passages and sentence candidates (features only; scores depend on the fold)."""

    passages: list[Passage]
    cands: list[Candidate]
    labels: np.ndarray  # per candidate: 1 when the sentence holds the answer


REFUSAL_CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # inverse L2 strengths the refusal model chooses among


def _fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, names: Sequence[str],
                  cs: Sequence[float] = REFUSAL_CS, inner_folds: int = 5) -> tuple[Logistic, float]:
    """Logistic regression on standardised features, weighted; with several ``cs`` the L2 strength is the one
    with the lowest weighted log loss over ``inner_folds`` stratified folds of these rows alone (nested
    cross-validation: the outer folds' held-out figures stay honest). The evidence features overlap (several
    measures of coverage), and at C = 1 one of them took a negative weight that refused well-covered short
    questions (docs/fitting.md)."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        raise ImportError("stdnews eval fit needs scikit-learn: pip install -e '.[fit]'") from exc
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    w = w * len(w) / w.sum()  # weights average 1: C keeps its meaning
    c = cs[0]
    if len(cs) > 1:
        splits = list(StratifiedKFold(inner_folds).split(z, y))
        def loss(c: float) -> float:
            return sum(log_loss(y[te], LogisticRegression(C=c, max_iter=2000).fit(z[tr], y[tr], sample_weight=w[tr])
                                .predict_proba(z[te])[:, 1], sample_weight=w[te], labels=[0.0, 1.0]) * w[te].sum()
                       for tr, te in splits)
        c = min(cs, key=loss)
    model = LogisticRegression(C=c, max_iter=2000).fit(z, y, sample_weight=w)
    return Logistic(tuple(names), tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]),
                    tuple(float(m) for m in mean), tuple(float(s) for s in scale)), c


def _fit_listwise(groups: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str], l2: float = 0.01
                  ) -> Logistic:
    """A conditional logit: per question, softmax over its sentences, fitted to put the probability on
    the sentences that hold the answer (scipy's L-BFGS; scikit-learn has no listwise model)."""
    from scipy.optimize import minimize

    allx = np.vstack([x for x, _ in groups])
    mean = allx.mean(axis=0)
    scale = allx.std(axis=0)
    scale[scale < 1e-9] = 1.0
    scaled = [((x - mean) / scale, y / y.sum()) for x, y in groups]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, t in scaled:
            z = x @ w
            z -= z.max()
            p = np.exp(z)
            p /= p.sum()
            total -= float(t @ np.log(p + 1e-12))
            grad -= x.T @ (t - p)
        n = len(scaled)
        return total / n + 0.5 * l2 * float(w @ w), grad / n + l2 * w

    w = minimize(loss, np.zeros(allx.shape[1]), jac=True, method="L-BFGS-B").x
    return Logistic(tuple(names), tuple(float(c) for c in w), 0.0, tuple(float(m) for m in mean),
                    tuple(float(v) for v in scale))


def _label(rec_q: Any, passage: Passage, text: str) -> float:
    """A sentence holds the answer: it matches at least half of the must_include groups, or, for a
    question without them, it comes from an expected source."""
    if rec_q.must_include:
        folded = metrics.fold(text)
        hit = sum(any(metrics.fold(s) in folded for s in g) for g in rec_q.must_include)
        return float(hit * 2 >= len(rec_q.must_include))
    return float(passage.doc_id in rec_q.expected_sources)


def prepare(items: Sequence[Any], bots: Sequence[Any], fusion: Fusion, k: int) -> list[Prepared]:
    out = []
    answerers = [ExtractiveAnswerer(embed=b.index.embedder.embed_documents) for b in bots]
    for it in items:
        retriever = bots[it.set_no].retriever
        passages = retriever.fuse(it.gathered, k, fusion)
        cands = answerers[it.set_no].candidates(it.q.question, passages, it.q.history)[3] if passages else []
        labels = np.array([_label(it.q, passages[c.passage - 1], c.text) for c in cands]) if it.q.answerable \
            else np.zeros(len(cands))
        out.append(Prepared(passages, cands, labels))
    return out


def _sentence_model(items: Sequence[Any], prep: Sequence[Prepared], mask: np.ndarray) -> Logistic:
    """Fitted on the questions whose answer is stated (``must_include``) and found in some sentence."""
    groups = [(np.array([[c.features[f] for f in SENTENCE_FEATURES] for c in p.cands]), p.labels)
              for i, (it, p) in enumerate(zip(items, prep, strict=True))
              if mask[i] and it.q.must_include and p.cands and p.labels.sum() > 0]
    return _fit_listwise(groups, SENTENCE_FEATURES)


def _evidence(it: Any, p: Prepared, sentence: Logistic) -> dict[str, float]:
    for c in p.cands:
        c.score = sentence.prob(c.features)
    ranked = sorted(p.cands, key=lambda c: -c.score)
    feats, _ = evidence_features(it.q.question, analyse(it.q.question), question_kind(it.q.question), p.passages,
                                 ranked)
    return feats


def _threshold(probs: np.ndarray, items: Sequence[Any], mask: np.ndarray, n_sets: int, max_fr: float) -> float:
    """The highest threshold whose false-refusal rate stays within ``max_fr`` on every set (among ``mask``)."""
    best = 0.0
    for t in np.unique(np.round(probs[mask], 4)):
        ok = True
        for s in range(n_sets):
            ans = [probs[i] for i, it in enumerate(items) if mask[i] and it.set_no == s and it.q.answerable]
            if ans and sum(p < t for p in ans) / len(ans) > max_fr:
                ok = False
                break
        if ok:
            best = max(best, float(t))
    return best


def fit_answer_models(items: Sequence[Any], bots: Sequence[Any], fusion: Fusion, fold_of: np.ndarray, folds: int,
                      names: Sequence[str], max_fr: float, dump: Path | None = None) -> dict[str, Any]:
    k = bots[0].settings.k
    prep = prepare(items, bots, fusion, k)
    n_sets = len(names)
    everyone = np.ones(len(items), dtype=bool)
    sizes = {s: sum(1 for it in items if it.set_no == s) for s in range(n_sets)}
    labels = np.array([float(it.q.answerable) for it in items])
    set_w = np.array([1.0 / sizes[it.set_no] for it in items])
    # Out-of-fold sentence models and evidence features.
    sent_f = [_sentence_model(items, prep, fold_of != f) for f in range(folds)]
    ev = np.array([[_evidence(it, p, sent_f[fold_of[i]])[n] for n in EVIDENCE_FEATURES]
                   for i, (it, p) in enumerate(zip(items, prep, strict=True))])
    ref_fc = [_fit_logistic(ev[fold_of != f], labels[fold_of != f], set_w[fold_of != f], EVIDENCE_FEATURES)
              for f in range(folds)]
    ref_f = [m for m, _ in ref_fc]
    oof = np.array([ref_f[fold_of[i]].prob(dict(zip(EVIDENCE_FEATURES, ev[i], strict=True)))
                    for i in range(len(items))])
    print("answers, held-out folds (answer accuracy / refusal accuracy / false refusals per set):")
    held: list[dict[str, Any]] = []
    records: list[list[dict[str, Any]]] = [[] for _ in range(n_sets)]
    for f in range(folds):
        t = _threshold(oof, items, fold_of != f, n_sets, max_fr)
        fitted = Weights(fusion, sent_f[f], replace(ref_f[f], threshold=t))
        answerers = [ExtractiveAnswerer(embed=b.index.embedder.embed_documents, fitted=fitted) for b in bots]
        fold_recs: list[list[dict[str, Any]]] = [[] for _ in range(n_sets)]
        for i, (it, p) in enumerate(zip(items, prep, strict=True)):
            if fold_of[i] != f:
                continue
            draft = answerers[it.set_no].draft(it.q.question, p.passages, it.q.history)
            rec = {"answerable": it.q.answerable, "refused": draft.refused, "answer": draft.text,
                   "must_include": [list(g) for g in it.q.must_include]}
            fold_recs[it.set_no].append(rec)
            rec.update({"set": names[it.set_no], "id": it.q.id, "question": it.q.question, "fold": f,
                        "keyword": it.gathered.keyword,
                        "p_answerable": round(float(oof[i]), 4), "threshold": round(t, 4),
                        "correct": metrics.is_correct(rec),
                        "evidence": {n: round(float(v), 4) for n, v in zip(EVIDENCE_FEATURES, ev[i], strict=True)}})
            records[it.set_no].append(rec)
        figs = [_answer_figures(r) for r in fold_recs]
        held.append({"fold": f, "threshold": round(t, 4), "refusal_c": ref_fc[f][1],
                     "held_out": dict(zip(names, figs, strict=True))})
        print(f"  fold {f}: refusal C {ref_fc[f][1]:g} threshold {t:.3f}  " + "  ".join(
            f"{Path(n).stem} {_fmt(x)}" for n, x in zip(names, figs, strict=True)))
    pooled = {n: _answer_figures(r) for n, r in zip(names, records, strict=True)}
    if dump:
        dump.write_text("".join(json.dumps(r) + "\n" for recs in records for r in recs), encoding="utf-8")
    print("  all folds pooled: " + "  ".join(f"{Path(n).stem} {_fmt(x)}" for n, x in pooled.items()))
    sentence = _sentence_model(items, prep, everyone)
    refusal, c = _fit_logistic(ev, labels, set_w, EVIDENCE_FEATURES)
    threshold = _threshold(oof, items, everyone, n_sets, max_fr)
    print(f"  fitted on everything: refusal C {c:g} threshold {threshold:.3f}")
    return {"sentence": sentence, "refusal": replace(refusal, threshold=threshold),
            "held_out": {"folds": held, "pooled": pooled}}


def _answer_figures(recs: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    return {"answer_accuracy": metrics.answer_accuracy(recs), "refusal_accuracy": metrics.refusal_accuracy(recs),
            "false_refusal_rate": metrics.false_refusal_rate(recs)}


def _fmt(x: dict[str, float | None]) -> str:
    return " / ".join("-" if v is None else f"{v:.3f}" for v in x.values())
