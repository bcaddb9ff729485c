"""On-disk layout of an index: feature shards (memory-mapped .npy), curvature sums, work ids, manifest.

    <root>/manifest.json            options, plan, fingerprints, shard list, sha256 of every file, checksum
    <root>/work_ids.json            row -> work id
    <root>/ckpt<c>/shard<s>.npy     (rows, K) float16 (or float32) features of checkpoint c
    <root>/ckpt<c>/scale<s>.npy     (rows,) float32 per-row scales of a float16 shard
    <root>/ckpt<c>/curvature.npz    the sums every preconditioner is made from
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attribution.engine.config import IndexIntegrityError
from attribution.engine.featurize import CurvatureStats

FORMAT = "attribution-gradient-index"
VERSION = 1
_SEP = "::"


class ShardWriter:
    """Appends feature rows; holds at most one shard in memory, so a build's memory does not grow with N."""

    def __init__(self, directory: Path, dim: int, dtype: str, shard_size: int) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.dtype = dtype
        self.shard_size = shard_size
        self.shards: list[dict[str, Any]] = []
        self._buffer = np.empty((shard_size, dim), dtype=np.float32)
        self._filled = 0
        self.rows = 0

    def append(self, feats: torch.Tensor) -> None:
        data = feats.detach().to("cpu", torch.float32).numpy()
        start = 0
        while start < len(data):
            take = min(self.shard_size - self._filled, len(data) - start)
            self._buffer[self._filled:self._filled + take] = data[start:start + take]
            self._filled += take
            start += take
            if self._filled == self.shard_size:
                self._flush()
        self.rows += len(data)

    def close(self) -> list[dict[str, Any]]:
        if self._filled:
            self._flush()
        self._buffer = np.empty((0, self.dim), dtype=np.float32)
        return self.shards

    def _flush(self) -> None:
        index = len(self.shards)
        rows = self._buffer[: self._filled]
        name = f"shard{index:05d}.npy"
        entry: dict[str, Any] = {"file": f"{self.directory.name}/{name}", "rows": int(self._filled)}
        if self.dtype == "float16":
            # One scale per row keeps float16 in range whatever the gradient magnitude: rows are stored
            # divided by their largest absolute value, so they never overflow nor flush to zero.
            scale = np.abs(rows).max(axis=1)
            scale[scale == 0] = 1.0
            np.save(self.directory / name, (rows / scale[:, None]).astype(np.float16))
            scale_name = f"scale{index:05d}.npy"
            np.save(self.directory / scale_name, scale.astype(np.float32))
            entry["scale"] = f"{self.directory.name}/{scale_name}"
        else:
            np.save(self.directory / name, rows.astype(np.float32))
        self.shards.append(entry)
        self._filled = 0


def iter_shard_rows(root: Path, shards: list[dict[str, Any]], batch_rows: int) -> Iterator[tuple[int, torch.Tensor]]:
    """Yields (first row, decoded float32 features (n, K)) in chunks of at most ``batch_rows`` rows."""
    start = 0
    for shard in shards:
        data = np.load(root / shard["file"], mmap_mode="r")
        scale = np.load(root / shard["scale"], mmap_mode="r") if "scale" in shard else None
        for offset in range(0, shard["rows"], batch_rows):
            part = np.array(data[offset:offset + batch_rows], dtype=np.float32)  # a copy: the map stays read-only
            if scale is not None:
                part = part * np.asarray(scale[offset:offset + batch_rows])[:, None]
            yield start + offset, torch.from_numpy(part)
        start += shard["rows"]


def save_stats(path: Path, stats: CurvatureStats) -> None:
    arrays: dict[str, np.ndarray] = {"n": np.array(stats.n, dtype=np.int64)}
    if stats.gram is not None:
        arrays["gram"] = stats.gram.numpy()
    for kind in ("rows", "cols", "vgram", "lam"):
        for name, value in getattr(stats, kind).items():
            arrays[f"{kind}{_SEP}{name}"] = value.numpy()
    for name, value in stats.sqnorm.items():
        arrays[f"sqnorm{_SEP}{name}"] = np.array(value, dtype=np.float64)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_stats(path: Path) -> CurvatureStats:
    stats = CurvatureStats()
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            value = data[key]
            if key == "n":
                stats.n = int(value)
            elif key == "gram":
                stats.gram = torch.from_numpy(value.copy())
            else:
                kind, name = key.split(_SEP, 1)
                if kind == "sqnorm":
                    stats.sqnorm[name] = float(value)
                else:
                    getattr(stats, kind)[name] = torch.from_numpy(value.copy())
    return stats


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_checksum(files: dict[str, str]) -> str:
    """One checksum for the whole index: sha256 over the sorted 'path sha256' lines of its files."""
    lines = "".join(f"{path} {sha}\n" for path, sha in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / "manifest.json"
    if not path.is_file():
        raise IndexIntegrityError(f"no attribution index at {root}: manifest.json is missing")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise IndexIntegrityError(f"manifest.json of the index at {root} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise IndexIntegrityError(f"{root} is not an attribution gradient index (format "
                                  f"{manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise IndexIntegrityError(f"index at {root} has format version {manifest.get('version')!r}; this engine "
                                  f"reads version {VERSION}: rebuild it")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    files: dict[str, str] = manifest["files"]
    for relative, expected in files.items():
        path = root / relative
        if not path.is_file():
            raise IndexIntegrityError(f"index at {root} is incomplete: {relative} is missing")
        actual = file_sha256(path)
        if actual != expected:
            raise IndexIntegrityError(f"index at {root} is corrupt: {relative} has sha256 {actual[:12]}..., the "
                                      f"manifest says {expected[:12]}...")
    if files_checksum(files) != manifest["checksum"]:
        raise IndexIntegrityError(f"index at {root}: the manifest's checksum does not match its file list")
