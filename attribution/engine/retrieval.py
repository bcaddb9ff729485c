"""Retrieval attribution for black-box models: cosine top-k over a stored matrix of work embeddings.

Same calling convention as the gradient index, so the nightly job treats both alike::

    index = EmbeddingIndex.build(encoder, work_batches, work_ids=ids)
    values, rows = index.top_k(encoder, None, query_batches, k=10)   # (Q, k) scores and row numbers
    index.work_ids[rows]                                              # row -> work id

``encoder`` is any callable mapping one batch to embeddings ``[B, D]`` (torch or numpy); the second argument
(the gradient index's ``loss_fn``) is accepted and ignored. Embeddings are L2-normalised on the way in, so the
score is the cosine similarity. They are stored as float16 (half the disk, enough for a cosine ranking) and
scored in float32 in row blocks: ``top_k`` never materialises the full ``Q x N`` matrix.

Plain numpy/torch: no Django import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "embedding-index/1"
EMBEDDINGS_FILE = "embeddings.npy"
WORK_IDS_FILE = "work_ids.npy"
META_FILE = "meta.json"

Encoder = Callable[[Any], "torch.Tensor | np.ndarray"]
ProgressFn = Callable[[int, "int | None"], None]  # (done batches, total batches or None), as the gradient index


class EmbeddingIndexError(Exception):
    """The stored embedding index is missing, damaged, or not what the caller expects."""


class EmbeddingIndexMismatchError(EmbeddingIndexError):
    """The index was built from other works or another encoder than the caller's: scoring with it is refused."""

    def __init__(self, mismatches: Mapping[str, tuple[Any, Any]]) -> None:
        self.mismatches = dict(mismatches)
        detail = "; ".join(
            f"{key}: index has {stored!r}, expected {want!r}" for key, (stored, want) in mismatches.items()
        )
        super().__init__(f"embedding index does not match: {detail}")


@dataclass(frozen=True)
class EmbeddingIndexConfig:
    """How embeddings are stored and scored.

    Attributes:
        storage_dtype: "float16" (default) or "float32" on disk and in memory.
        block_rows: fewest index rows scored at a time by ``top_k``...
        score_block_bytes: ...and more while the score block (queries x rows, float32) stays under this size, so
            a few queries scan the index in one or two matrix products.
        query_block: queries scored at a time.
        float32_cache_bytes: keep a float32 copy in memory when it is at most this big (faster single queries);
            larger indexes convert one block at a time.
    """

    storage_dtype: str = "float16"
    block_rows: int = 32768
    score_block_bytes: int = 64 << 20
    query_block: int = 512
    float32_cache_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        if self.storage_dtype not in ("float16", "float32"):
            raise ValueError(f"storage_dtype must be 'float16' or 'float32', got {self.storage_dtype!r}")
        if self.block_rows < 1 or self.query_block < 1:
            raise ValueError("block_rows and query_block must be >= 1")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); an all-zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _as_numpy(embeddings: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(embeddings, torch.Tensor):
        return embeddings.detach().to("cpu", torch.float32).numpy()
    return np.asarray(embeddings, dtype=np.float32)


def encode_batches(encoder: Encoder, batches: Iterable[Any], *, progress: ProgressFn | None = None) -> np.ndarray:
    """Run ``encoder`` over ``batches`` and stack the L2-normalised rows, float32 ``[N, D]``."""
    parts: list[np.ndarray] = []
    try:
        total: int | None = len(batches)  # type: ignore[arg-type]
    except TypeError:
        total = None
    with torch.no_grad():
        for done, batch in enumerate(batches, start=1):
            out = _as_numpy(encoder(batch))
            if out.ndim != 2:
                raise EmbeddingIndexError(f"encoder returned shape {out.shape}; expected (batch, dim)")
            parts.append(l2_normalise(out))
            if progress is not None:
                progress(done, total)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    dims = {p.shape[1] for p in parts}
    if len(dims) != 1:
        raise EmbeddingIndexError(f"encoder returned embeddings of different sizes: {sorted(dims)}")
    return np.concatenate(parts, axis=0)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class EmbeddingIndex:
    """L2-normalised work embeddings ``[N, D]`` with the work id of every row.

    Attributes:
        embeddings: ``[N, D]`` array (float16 or float32; may be memory-mapped after ``load``).
        work_ids: ``[N]`` int64, the work id of each row.
        meta: what the index was built from (manifest hash, encoder fingerprint, ...), checked by ``load``.
        config: storage and scoring options.
    """

    embeddings: np.ndarray
    work_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    config: EmbeddingIndexConfig = field(default_factory=EmbeddingIndexConfig)

    def __post_init__(self) -> None:
        self.work_ids = np.asarray(self.work_ids, dtype=np.int64)
        if self.embeddings.ndim != 2:
            raise EmbeddingIndexError(f"embeddings must be 2-D, got shape {self.embeddings.shape}")
        if len(self.work_ids) != len(self.embeddings):
            raise EmbeddingIndexError(
                f"{len(self.embeddings)} embeddings but {len(self.work_ids)} work ids: every row needs one"
            )
        self._float32: np.ndarray | None = None

    # --- building -----------------------------------------------------------------------------------------

    @classmethod
    def from_embeddings(
        cls,
        embeddings: np.ndarray | torch.Tensor,
        work_ids: Iterable[int] | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        config: EmbeddingIndexConfig | None = None,
    ) -> EmbeddingIndex:
        """An index over precomputed embeddings (normalised here); rows default to work ids ``0..N-1``."""
        cfg = config or EmbeddingIndexConfig()
        matrix = l2_normalise(_as_numpy(embeddings)).astype(cfg.storage_dtype)
        ids = np.arange(len(matrix)) if work_ids is None else np.fromiter(work_ids, dtype=np.int64)
        return cls(embeddings=matrix, work_ids=ids, meta=dict(meta or {}), config=cfg)

    @classmethod
    def build(
        cls,
        encoder: Encoder,
        work_batches: Iterable[Any],
        *,
        work_ids: Iterable[int] | None = None,
        meta: Mapping[str, Any] | None = None,
        config: EmbeddingIndexConfig | None = None,
        progress: ProgressFn | None = None,
    ) -> EmbeddingIndex:
        """Embed every work batch with ``encoder`` and index the rows.

        Args:
            encoder: callable ``batch -> [B, D]``.
            work_batches: batches over the works in order (row ``i`` is the ``i``-th work).
            work_ids: the work id of each row (default ``0..N-1``).
            meta: recorded with the index and compared by ``load(expect=...)``.
            config: storage and scoring options.
            progress: ``progress(done_batches, total_batches_or_None)`` after every batch.

        Returns:
            The index (in memory; ``save`` writes it).
        """
        matrix = encode_batches(encoder, work_batches, progress=progress)
        ids = list(work_ids) if work_ids is not None else None
        if ids is not None and len(ids) != len(matrix):
            raise EmbeddingIndexError(f"{len(ids)} work ids for {len(matrix)} embedded rows")
        return cls.from_embeddings(matrix, ids, meta=meta, config=config)

    # --- shape --------------------------------------------------------------------------------------------

    @property
    def n_works(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return self.n_works

    # --- scoring ------------------------------------------------------------------------------------------

    def _block(self, start: int, stop: int) -> torch.Tensor:
        if self._float32 is None and self.embeddings.size * 4 <= self.config.float32_cache_bytes:
            self._float32 = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if self._float32 is not None:
            return torch.from_numpy(self._float32[start:stop])
        return torch.from_numpy(np.asarray(self.embeddings[start:stop], dtype=np.float32))

    def _queries(self, queries: np.ndarray | torch.Tensor) -> torch.Tensor:
        q = l2_normalise(_as_numpy(queries))
        if q.ndim != 2 or (len(q) and q.shape[1] != self.dim):
            raise EmbeddingIndexError(f"query embeddings have shape {q.shape}; the index has dimension {self.dim}")
        return torch.from_numpy(q)

    def scores_for(self, queries: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Cosine scores ``[Q, N]`` of query embeddings against every work (materialises the full matrix)."""
        q = self._queries(queries)
        out = torch.empty((len(q), self.n_works), dtype=torch.float32)
        for start in range(0, self.n_works, self.config.block_rows):
            stop = min(start + self.config.block_rows, self.n_works)
            out[:, start:stop] = q @ self._block(start, stop).T
        return out

    def top_k_for(self, queries: np.ndarray | torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best works per query embedding: ``(values [Q, k], rows [Q, k])``, best first.

        Blocked: at most ``max(block_rows, score_block_bytes / 4 / queries)`` rows are scored at once and a
        running top-k is merged per block, so memory stays bounded whatever ``N`` and ``Q``. ``k`` larger than
        the index is cut to its size.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q_all = self._queries(queries)
        k = min(k, self.n_works)
        values = torch.empty((len(q_all), k), dtype=torch.float32)
        rows = torch.empty((len(q_all), k), dtype=torch.long)
        if k == 0:
            return values, rows
        for q_start in range(0, len(q_all), self.config.query_block):
            q = q_all[q_start : q_start + self.config.query_block]  # (Qb, D)
            best_v = torch.full((len(q), 0), float("-inf"))
            best_r = torch.zeros((len(q), 0), dtype=torch.long)
            step = max(self.config.block_rows, self.config.score_block_bytes // (4 * len(q)))
            for start in range(0, self.n_works, step):
                stop = min(start + step, self.n_works)
                sims = q @ self._block(start, stop).T  # (Qb, Bn)
                v, r = torch.topk(sims, min(k, stop - start), dim=1)
                best_v = torch.cat([best_v, v], dim=1)
                best_r = torch.cat([best_r, r + start], dim=1)
                if best_v.shape[1] > k:
                    best_v, pick = torch.topk(best_v, k, dim=1)
                    best_r = torch.gather(best_r, 1, pick)
            values[q_start : q_start + len(q)] = best_v
            rows[q_start : q_start + len(q)] = best_r
        return values, rows

    def score(self, encoder: Encoder, loss_fn: Any, query_batches: Iterable[Any]) -> torch.Tensor:
        """Cosine scores ``[Q, N]`` of the encoded queries (``loss_fn`` is ignored: gradient-index signature)."""
        return self.scores_for(encode_batches(encoder, query_batches))

    def top_k(
        self, encoder: Encoder, loss_fn: Any, query_batches: Iterable[Any], k: int = 10
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` works per query: ``(values [Q, k], rows [Q, k])``; ``work_ids[rows]`` gives work ids.

        Args:
            encoder: the same kind of encoder the index was built with.
            loss_fn: ignored (the gradient index's signature, so callers treat both alike).
            query_batches: batches of queries in order.
            k: works per query.
        """
        queries = encode_batches(encoder, query_batches)
        if queries.size == 0:
            return torch.empty((0, min(k, self.n_works))), torch.empty((0, min(k, self.n_works)), dtype=torch.long)
        return self.top_k_for(queries, k)

    # --- storage ------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> str:
        """Write the index to directory ``path``; returns a SHA-256 over its files."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / EMBEDDINGS_FILE, np.ascontiguousarray(self.embeddings, dtype=self.config.storage_dtype))
        np.save(out / WORK_IDS_FILE, self.work_ids)
        files = {name: _file_sha256(out / name) for name in (EMBEDDINGS_FILE, WORK_IDS_FILE)}
        doc = {
            "format": FORMAT,
            "n_works": self.n_works,
            "dim": self.dim,
            "config": asdict(self.config),
            "files": files,
            "meta": self.meta,
        }
        (out / META_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True))
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(f"{name}:{files[name]}\n".encode())
        return digest.hexdigest()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        expect: Mapping[str, Any] | None = None,
        verify: bool = True,
        mmap: bool = True,
    ) -> EmbeddingIndex:
        """Open a saved index.

        Args:
            path: the directory ``save`` wrote.
            expect: ``meta`` values the caller requires (e.g. ``{"manifest_hash": ..., "encoder": ...}``).
            verify: check every file against the SHA-256 recorded at save time.
            mmap: memory-map the embedding matrix instead of reading it.

        Raises:
            EmbeddingIndexError: missing or damaged files.
            EmbeddingIndexMismatchError: ``meta`` differs from ``expect`` (a stale index).
        """
        root = Path(path)
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise EmbeddingIndexError(f"no embedding index at {str(root)!r} ({META_FILE} missing)")
        doc = json.loads(meta_path.read_text())
        if doc.get("format") != FORMAT:
            raise EmbeddingIndexError(f"{str(root)!r} has format {doc.get('format')!r}, expected {FORMAT!r}")
        for name, recorded in doc.get("files", {}).items():
            file = root / name
            if not file.is_file():
                raise EmbeddingIndexError(f"embedding index file {str(file)!r} is missing")
            if verify and _file_sha256(file) != recorded:
                raise EmbeddingIndexError(f"embedding index file {str(file)!r} does not match its recorded checksum")
        meta = doc.get("meta", {})
        if expect:
            mismatches = {key: (meta.get(key), want) for key, want in expect.items() if meta.get(key) != want}
            if mismatches:
                raise EmbeddingIndexMismatchError(mismatches)
        embeddings = np.load(root / EMBEDDINGS_FILE, mmap_mode="r" if mmap else None)
        work_ids = np.load(root / WORK_IDS_FILE)
        cfg = EmbeddingIndexConfig(**doc.get("config", {}))
        return cls(embeddings=embeddings, work_ids=work_ids, meta=meta, config=cfg)
