"""Copy detection: does a generation reproduce a training work verbatim (text) or nearly so (images)?

Attribution scores are estimates; a verbatim copy is a fact, and the nightly job credits it whatever the scores
say. Two detectors share one index object, built once per model version and queried per generation:

- **Text**: word 8-gram shingles (lower-cased ``\\w+`` tokens) hashed to 64 bits and kept in a sorted posting
  array. A generation's shingles are looked up, hits on the same alignment (work position - generation
  position) are joined into exact runs, and runs separated by small edits (a substituted, inserted or dropped
  word) are chained into one region. A match needs ``min_match_words`` (default 12) words covered by shared
  shingles, so short common phrases never count; shingles found in many works (``stop_min_works``, or
  ``stop_fraction`` of the corpus) are dropped at build time as boilerplate (licences, greetings, quotations).
  A paraphrase shares no 8-word run and does not match.
- **Images**: a 64-bit DCT perceptual hash (pHash), a 64-bit gradient hash (dHash) and a 16x16 thumbnail per
  work; a generation is examined whole and in sub-windows (to find a work pasted into a larger image) and
  matches a work when the 128-bit Hamming distance is at most ``max_image_distance`` and the thumbnails
  correlate at ``min_image_correlation`` or more. The match reports the window (region), distance and
  correlation.

Plain numpy/PIL: no Django import.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "copy-index/1"
TEXT_FILE = "text.npz"
IMAGE_FILE = "images.npz"
META_FILE = "meta.json"

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the rolling shingle hash


class CopyIndexError(Exception):
    """The stored copy index is missing or damaged."""


@dataclass(frozen=True)
class CopyDetectionConfig:
    """Thresholds of both detectors.

    Attributes:
        ngram: words per shingle.
        min_match_words: words a region must cover with shared shingles to count as a copy.
        max_gap_words: largest edit (in words) bridged when chaining exact runs into one region.
        stop_min_works: a shingle present in at least this many works is boilerplate and ignored...
        stop_fraction: ...as is one present in at least this fraction of all works (whichever is larger).
        max_positions_per_work: postings kept per (shingle, work), so a repeated line cannot blow up the index.
        max_image_distance: largest 128-bit Hamming distance (pHash + dHash) of a candidate near-duplicate...
        min_image_correlation: ...which must also correlate this well with the work (16x16 thumbnails).
        window_scales: sub-window sizes (fractions of the generation's side) searched for a pasted-in work.
    """

    ngram: int = 8
    min_match_words: int = 12
    max_gap_words: int = 4
    stop_min_works: int = 5
    stop_fraction: float = 0.01
    max_positions_per_work: int = 8
    max_image_distance: int = 28
    min_image_correlation: float = 0.98
    window_scales: tuple[float, ...] = (0.5, 0.75)

    def __post_init__(self) -> None:
        if self.ngram < 2:
            raise ValueError(f"ngram must be >= 2, got {self.ngram}")
        if self.min_match_words < self.ngram:
            raise ValueError(f"min_match_words ({self.min_match_words}) must be >= ngram ({self.ngram})")
        if not 0 <= self.max_image_distance <= 128:
            raise ValueError(f"max_image_distance must be in [0, 128], got {self.max_image_distance}")
        if not -1.0 <= self.min_image_correlation <= 1.0:
            raise ValueError(f"min_image_correlation must be in [-1, 1], got {self.min_image_correlation}")


@dataclass(frozen=True)
class TextCopyMatch:
    """A region of a generation copied from a work.

    ``generation_span`` is a character range ``[start, end)`` of the generation text; word ranges are in
    tokens (``\\w+``) of each text (``char_span`` maps a work's word range to characters).
    """

    work_id: int
    generation_span: tuple[int, int]
    generation_words: tuple[int, int]
    work_words: tuple[int, int]
    matched_words: int  # words of the region covered by shared shingles
    longest_run_words: int  # the longest exact run inside the region
    text: str  # the copied text as it appears in the generation

    @property
    def verbatim(self) -> bool:
        """True when the whole region is one exact run (no edits)."""
        return self.longest_run_words == self.generation_words[1] - self.generation_words[0]


@dataclass(frozen=True)
class ImageCopyMatch:
    """A generation region that is a near-duplicate of a work image."""

    work_id: int
    distance: int  # Hamming distance over 128 bits (0 = identical hashes)
    correlation: float  # of the mean-removed 16x16 thumbnails (1.0 = same picture up to brightness/contrast)
    region: tuple[int, int, int, int]  # (left, top, right, bottom) in generation pixels
    whole_image: bool


# --- text ----------------------------------------------------------------------------------------------------


def tokenize(text: str) -> tuple[list[str], np.ndarray]:
    """Lower-cased word tokens and their character spans ``[n, 2]`` (start, end)."""
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in _WORD_RE.finditer(text or ""):
        tokens.append(match.group(0).casefold())
        spans.append(match.span())
    return tokens, np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def char_span(text: str, words: tuple[int, int]) -> tuple[int, int]:
    """The character range ``[start, end)`` of word range ``words`` in ``text`` (as ``tokenize`` counts words)."""
    _, spans = tokenize(text)
    start, end = words
    if not 0 <= start < end <= len(spans):
        raise ValueError(f"word range {words} is outside the text's {len(spans)} words")
    return int(spans[start, 0]), int(spans[end - 1, 1])


def _token_hashes(tokens: Sequence[str], cache: dict[str, int]) -> np.ndarray:
    out = np.empty(len(tokens), dtype=np.uint64)
    for i, token in enumerate(tokens):
        h = cache.get(token)
        if h is None:
            # blake2b, not hash(): Python's str hash changes per process, and the index is saved to disk.
            h = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
            cache[token] = h
        out[i] = h
    return out


def shingle_hashes(tokens: Sequence[str], ngram: int, cache: dict[str, int] | None = None) -> np.ndarray:
    """64-bit hashes of every ``ngram``-word window, ``[max(0, n - ngram + 1)]`` (uint64, wraps on purpose)."""
    n = len(tokens) - ngram + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    th = _token_hashes(tokens, cache if cache is not None else {})
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(ngram):
            h = h * _MULT + th[j : j + n]
    return h


@dataclass
class TextCopyIndex:
    """Sorted shingle postings over the works' text."""

    config: CopyDetectionConfig
    hashes: np.ndarray  # (P,) uint64, sorted
    post_doc: np.ndarray  # (P,) int32, row into work_ids
    post_pos: np.ndarray  # (P,) int32, word position of the shingle in the work
    work_ids: np.ndarray  # (D,) int64
    stats: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, texts: Iterable[tuple[int, str]], config: CopyDetectionConfig) -> TextCopyIndex:
        cache: dict[str, int] = {}
        work_ids: list[int] = []
        h_parts: list[np.ndarray] = []
        d_parts: list[np.ndarray] = []
        p_parts: list[np.ndarray] = []
        n_words = 0
        for work_id, text in texts:
            tokens, _ = tokenize(text)
            n_words += len(tokens)
            hashes = shingle_hashes(tokens, config.ngram, cache)
            row = len(work_ids)
            work_ids.append(int(work_id))
            if len(hashes):
                h_parts.append(hashes)
                d_parts.append(np.full(len(hashes), row, dtype=np.int32))
                p_parts.append(np.arange(len(hashes), dtype=np.int32))
        if h_parts:
            hashes = np.concatenate(h_parts)
            docs = np.concatenate(d_parts)
            pos = np.concatenate(p_parts)
        else:
            hashes, docs, pos = np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int32)
        order = np.lexsort((pos, docs, hashes))
        hashes, docs, pos = hashes[order], docs[order], pos[order]
        total = len(hashes)

        # Cap repeats of a shingle inside one work (a refrain, a repeated licence line).
        keep = np.ones(total, dtype=bool)
        if total:
            new_pair = np.r_[True, (hashes[1:] != hashes[:-1]) | (docs[1:] != docs[:-1])]
            pair_start = np.maximum.accumulate(np.where(new_pair, np.arange(total), 0))
            keep &= (np.arange(total) - pair_start) < config.max_positions_per_work
            # Document frequency per shingle: how many distinct works contain it.
            new_hash = np.r_[True, hashes[1:] != hashes[:-1]]
            hash_id = np.cumsum(new_hash) - 1
            df = np.bincount(hash_id, weights=new_pair.astype(np.float64)).astype(np.int64)
            stop_at = max(config.stop_min_works, int(np.ceil(config.stop_fraction * max(1, len(work_ids)))))
            stopped = df[hash_id] >= stop_at
            keep &= ~stopped
            n_stop = int((df >= stop_at).sum())
        else:
            n_stop, stop_at = 0, config.stop_min_works
        stats = {
            "works": len(work_ids),
            "words": n_words,
            "shingles": total,
            "postings": int(keep.sum()),
            "stopped_shingles": n_stop,
            "stop_min_works_effective": stop_at,
        }
        return cls(
            config=config,
            hashes=hashes[keep],
            post_doc=docs[keep],
            post_pos=pos[keep],
            work_ids=np.asarray(work_ids, dtype=np.int64),
            stats=stats,
        )

    def query(self, text: str) -> list[TextCopyMatch]:
        """Works whose text the generation ``text`` copies, best (most words) first, one match per work."""
        cfg = self.config
        tokens, spans = tokenize(text)
        g_hash = shingle_hashes(tokens, cfg.ngram)
        if not len(g_hash) or not len(self.hashes):
            return []
        lo = np.searchsorted(self.hashes, g_hash, side="left")
        hi = np.searchsorted(self.hashes, g_hash, side="right")
        counts = hi - lo
        if not counts.sum():
            return []
        g_pos = np.repeat(np.arange(len(g_hash)), counts)
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo[counts > 0], hi[counts > 0], strict=True)])
        docs = self.post_doc[idx].astype(np.int64)
        w_pos = self.post_pos[idx].astype(np.int64)
        diag = w_pos - g_pos

        # Exact runs: same work, same alignment, consecutive generation positions.
        order = np.lexsort((g_pos, diag, docs))
        docs, diag, g_pos, w_pos = docs[order], diag[order], g_pos[order], w_pos[order]
        brk = np.r_[True, (docs[1:] != docs[:-1]) | (diag[1:] != diag[:-1]) | (g_pos[1:] != g_pos[:-1] + 1)]
        starts = np.flatnonzero(brk)
        ends = np.r_[starts[1:], len(docs)] - 1
        runs_by_doc: dict[int, list[tuple[int, int, int, int]]] = {}
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            g0, g1 = int(g_pos[s]), int(g_pos[e]) + cfg.ngram  # words [g0, g1)
            w0 = int(w_pos[s])
            runs_by_doc.setdefault(int(docs[s]), []).append((g0, g1, w0, w0 + (g1 - g0)))

        matches: list[TextCopyMatch] = []
        for doc, runs in runs_by_doc.items():
            best = _best_region(runs, cfg.max_gap_words)
            if best is None or best[4] < cfg.min_match_words:
                continue
            g0, g1, w0, w1, covered, longest = best
            c0, c1 = int(spans[g0, 0]), int(spans[g1 - 1, 1])
            matches.append(
                TextCopyMatch(
                    work_id=int(self.work_ids[doc]),
                    generation_span=(c0, c1),
                    generation_words=(g0, g1),
                    work_words=(w0, w1),
                    matched_words=covered,
                    longest_run_words=longest,
                    text=text[c0:c1],
                )
            )
        matches.sort(key=lambda m: (-m.matched_words, -m.longest_run_words, m.work_id))
        return matches


def _best_region(runs: list[tuple[int, int, int, int]], max_gap: int) -> tuple[int, int, int, int, int, int] | None:
    """Chain exact runs (sorted by generation start) into aligned regions; the one covering most words.

    Two runs chain when the later one starts after the earlier one in both texts, within ``max_gap`` words
    (plus overlap) on each side: a substituted, inserted or dropped word leaves such a gap.
    Returns ``(g0, g1, w0, w1, covered_words, longest_run_words)``.
    """
    runs = sorted(runs)
    best = None
    region: list[int] | None = None  # g0, g1, w0, w1, covered, longest
    for g0, g1, w0, w1 in runs:
        length = g1 - g0
        if region is not None:
            rg0, rg1, rw0, rw1, covered, longest = region
            g_gap, w_gap = g0 - rg1, w0 - rw1
            if g0 > rg0 and w0 > rw0 and -length < g_gap <= max_gap and -length < w_gap <= max_gap:
                new_words = g1 - max(g0, rg1)
                if new_words > 0:
                    region = [rg0, max(rg1, g1), rw0, max(rw1, w1), covered + new_words, max(longest, length)]
                continue
            best = _better(best, region)
        region = [g0, g1, w0, w1, length, length]
    best = _better(best, region)
    return tuple(best) if best is not None else None  # type: ignore[return-value]


def _better(a: list[int] | None, b: list[int] | None) -> list[int] | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b[4], b[5]) > (a[4], a[5]) else a


# --- images --------------------------------------------------------------------------------------------------


def decode_gray(data: bytes) -> np.ndarray:
    """Image bytes (any format Pillow reads) -> float32 grayscale ``[H, W]`` in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except Exception as exc:
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from exc


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(np.clip(gray, 0.0, 1.0), dtype=np.float32))  # mode "F"
    return np.asarray(img.resize((width, height), Image.Resampling.BOX), dtype=np.float64)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)
_BITS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def _pack(bits: np.ndarray) -> np.uint64:
    return np.bitwise_or.reduce(np.where(bits.reshape(64), _BITS, np.uint64(0)))


def phash(gray: np.ndarray) -> np.uint64:
    """64-bit perceptual hash: low 8x8 DCT frequencies of a 32x32 reduction, thresholded at their median."""
    small = _resize(gray, 32, 32)
    coeffs = (_DCT32 @ small @ _DCT32.T)[:8, :8]
    flat = coeffs.reshape(64)
    median = np.median(flat[1:])  # the DC term would dominate the median
    return _pack(coeffs > median)


def dhash(gray: np.ndarray) -> np.uint64:
    """64-bit gradient hash: is each pixel of a 9x8 reduction brighter than its right neighbour."""
    small = _resize(gray, 9, 8)
    return _pack(small[:, :-1] > small[:, 1:])


def image_hashes(gray: np.ndarray) -> tuple[np.uint64, np.uint64]:
    return phash(gray), dhash(gray)


THUMB_SIDE = 16


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """A 16x16 area-averaged reduction, mean removed and L2-normalised ``[256]`` (all zeros for a flat image)."""
    small = _resize(gray, THUMB_SIDE, THUMB_SIDE).reshape(-1)
    small = small - small.mean()
    norm = np.linalg.norm(small)
    return (small / norm if norm > 1e-9 else small).astype(np.float32)


def _windows(height: int, width: int, scales: Sequence[float]) -> list[tuple[int, int, int, int]]:
    """The whole image, then sub-windows at each scale, stride about half a window, touching every edge."""
    out = [(0, 0, width, height)]
    for scale in scales:
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        lefts = _positions(width - w, w)
        tops = _positions(height - h, h)
        out.extend((left, top, left + w, top + h) for top in tops for left in lefts)
    return out


def _positions(span: int, size: int) -> list[int]:
    steps = int(np.ceil(span / max(1, size / 2))) if span > 0 else 0
    return sorted({round(x) for x in np.linspace(0, span, steps + 1)})


@dataclass
class ImageHashIndex:
    """pHash + dHash and a 16x16 thumbnail of every image work.

    The hashes find candidates cheaply; the thumbnail confirms them: a near-duplicate's mean-removed thumbnail
    correlates with the work's at ``min_image_correlation`` or more. Hashes alone confuse small images of the
    same shape (two writers' 8x8 "1"s differ by as few bits as a noisy copy does); the correlation does not.
    """

    config: CopyDetectionConfig
    work_ids: np.ndarray  # (N,) int64
    phashes: np.ndarray  # (N,) uint64
    dhashes: np.ndarray  # (N,) uint64
    thumbs: np.ndarray  # (N, 256) float16, mean-removed and L2-normalised

    @classmethod
    def build(cls, images: Iterable[tuple[int, bytes | np.ndarray]], config: CopyDetectionConfig) -> ImageHashIndex:
        ids: list[int] = []
        ph: list[np.uint64] = []
        dh: list[np.uint64] = []
        th: list[np.ndarray] = []
        for work_id, image in images:
            gray = decode_gray(image) if isinstance(image, bytes | bytearray) else np.asarray(image, np.float32)
            p, d = image_hashes(gray)
            ids.append(int(work_id))
            ph.append(p)
            dh.append(d)
            th.append(thumbnail(gray))
        return cls(
            config=config,
            work_ids=np.asarray(ids, dtype=np.int64),
            phashes=np.asarray(ph, dtype=np.uint64),
            dhashes=np.asarray(dh, dtype=np.uint64),
            thumbs=np.asarray(th, dtype=np.float16).reshape(len(ids), THUMB_SIDE * THUMB_SIDE),
        )

    def query(self, image: bytes | np.ndarray) -> list[ImageCopyMatch]:
        """Works the generation image (or one of its windows) nearly duplicates, closest first, one per work."""
        if not len(self.work_ids):
            return []
        gray = decode_gray(image) if isinstance(image, bytes | bytearray) else np.asarray(image, np.float32)
        height, width = gray.shape
        thumbs = self.thumbs.astype(np.float32)
        best_corr = np.full(len(self.work_ids), -2.0)
        best_dist = np.full(len(self.work_ids), 129, dtype=np.int64)
        best_win = np.zeros(len(self.work_ids), dtype=np.int64)
        windows = _windows(height, width, self.config.window_scales)
        for w_index, (left, top, right, bottom) in enumerate(windows):
            window = gray[top:bottom, left:right]
            p, d = image_hashes(window)
            dist = np.bitwise_count(self.phashes ^ p).astype(np.int64) + np.bitwise_count(self.dhashes ^ d)
            corr = thumbs @ thumbnail(window)  # (N,)
            ok = (dist <= self.config.max_image_distance) & (corr >= self.config.min_image_correlation)
            better = ok & (corr > best_corr)
            best_corr[better] = corr[better]
            best_dist[better] = dist[better]
            best_win[better] = w_index
        hits = np.flatnonzero(best_corr >= self.config.min_image_correlation)
        matches = [
            ImageCopyMatch(
                work_id=int(self.work_ids[i]),
                distance=int(best_dist[i]),
                correlation=round(min(1.0, float(best_corr[i])), 4),  # float16 thumbs can overshoot 1
                region=windows[int(best_win[i])],
                whole_image=int(best_win[i]) == 0,
            )
            for i in hits
        ]
        matches.sort(key=lambda m: (-m.correlation, m.distance, m.work_id))
        return matches


# --- both ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyMatches:
    """What one generation copies: text regions and near-duplicate images."""

    text: tuple[TextCopyMatch, ...] = ()
    images: tuple[ImageCopyMatch, ...] = ()

    @property
    def work_ids(self) -> list[int]:
        seen: dict[int, None] = {}
        for match in (*self.text, *self.images):
            seen.setdefault(match.work_id, None)
        return list(seen)

    def __bool__(self) -> bool:
        return bool(self.text or self.images)


@dataclass
class CopyIndex:
    """Text shingles and image hashes of one model version's works.

    Build once per model version; ``query`` per generation::

        index = CopyIndex.build(texts=[(work_id, text), ...], images=[(work_id, png_bytes), ...])
        found = index.query(text=generation_text, image=generation_png)
    """

    text: TextCopyIndex
    images: ImageHashIndex
    config: CopyDetectionConfig

    @classmethod
    def build(
        cls,
        *,
        texts: Iterable[tuple[int, str]] = (),
        images: Iterable[tuple[int, bytes | np.ndarray]] = (),
        config: CopyDetectionConfig | None = None,
    ) -> CopyIndex:
        cfg = config or CopyDetectionConfig()
        return cls(text=TextCopyIndex.build(texts, cfg), images=ImageHashIndex.build(images, cfg), config=cfg)

    @property
    def stats(self) -> dict[str, Any]:
        return {**self.text.stats, "images": len(self.images.work_ids)}

    def query(self, *, text: str = "", image: bytes | np.ndarray | None = None) -> CopyMatches:
        """Copies in one generation (its output text and/or output image)."""
        found_text = tuple(self.text.query(text)) if text else ()
        found_images = tuple(self.images.query(image)) if image is not None else ()
        return CopyMatches(text=found_text, images=found_images)

    def save(self, path: str | Path) -> str:
        """Write to directory ``path``; returns a SHA-256 over the files."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(
            out / TEXT_FILE,
            hashes=self.text.hashes,
            post_doc=self.text.post_doc,
            post_pos=self.text.post_pos,
            work_ids=self.text.work_ids,
        )
        np.savez(
            out / IMAGE_FILE,
            work_ids=self.images.work_ids,
            phashes=self.images.phashes,
            dhashes=self.images.dhashes,
            thumbs=self.images.thumbs,
        )
        files = {name: _sha256(out / name) for name in (TEXT_FILE, IMAGE_FILE)}
        cfg = asdict(self.config)
        doc = {"format": FORMAT, "config": cfg, "text_stats": self.text.stats, "files": files}
        (out / META_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True))
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(f"{name}:{files[name]}\n".encode())
        return digest.hexdigest()

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> CopyIndex:
        root = Path(path)
        if not (root / META_FILE).is_file():
            raise CopyIndexError(f"no copy index at {str(root)!r} ({META_FILE} missing)")
        doc = json.loads((root / META_FILE).read_text())
        if doc.get("format") != FORMAT:
            raise CopyIndexError(f"{str(root)!r} has format {doc.get('format')!r}, expected {FORMAT!r}")
        for name, recorded in doc.get("files", {}).items():
            if not (root / name).is_file():
                raise CopyIndexError(f"copy index file {str(root / name)!r} is missing")
            if verify and _sha256(root / name) != recorded:
                raise CopyIndexError(f"copy index file {str(root / name)!r} does not match its recorded checksum")
        raw = dict(doc["config"])
        raw["window_scales"] = tuple(raw.get("window_scales", ()))
        cfg = CopyDetectionConfig(**raw)
        with np.load(root / TEXT_FILE) as t:
            text = TextCopyIndex(
                config=cfg,
                hashes=t["hashes"],
                post_doc=t["post_doc"],
                post_pos=t["post_pos"],
                work_ids=t["work_ids"],
                stats=doc.get("text_stats", {}),
            )
        with np.load(root / IMAGE_FILE) as i:
            images = ImageHashIndex(
                config=cfg, work_ids=i["work_ids"], phashes=i["phashes"], dhashes=i["dhashes"], thumbs=i["thumbs"]
            )
        return cls(text=text, images=images, config=cfg)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
