"""Which parameters take part in attribution, how each is featurised, and how many dimensions each gets.

A *block* is one feature group of the index:
- ``lowrank``: the weight of an ``nn.Linear``, a GPT-2 style ``Conv1D`` (weight stored transposed), an
  ``nn.Embedding`` or an ``nn.Conv2d`` (groups=1), with the module's bias folded in as an extra input
  column. Its per-example gradient is Σ_t r_t c_tᵀ in the weight's storage layout (rows x cols), so its
  projection P_rows G P_colsᵀ = Σ_t (P_rows r_t)(P_cols c_t)ᵀ is computed from the two projected sides
  without forming G (LoGra's Kronecker trick). A weight shared by several modules (an input embedding tied to
  the output head) is one block: every use adds its outer products to the same projected gradient, which is
  exactly the projection of the tied weight's total gradient, so the weight is counted once.
- ``layernorm``: the affine weight and bias of an ``nn.LayerNorm``, featurised from x̂ and the output
  gradient in the same pass.
- ``dense``: any other trainable parameter; its per-example gradient comes from ``torch.func`` (vmap of
  grad) and is projected with a seeded dense Gaussian matrix.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from attribution.engine.config import IndexConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Use:
    """One module that reads a block's weight, and which side of the weight each of its tensors feeds."""

    module: str
    kind: str  # linear | conv1d | embedding | conv2d | layernorm
    has_bias: bool


@dataclass
class Block:
    name: str
    kind: str  # lowrank | layernorm | dense
    params: list[str]
    shapes: list[list[int]]
    numel: int
    uses: list[Use] = field(default_factory=list)
    # lowrank: storage layout of the weight (rows, cols) and whether a bias adds one row/column.
    rows: int = 0
    cols: int = 0
    rows_aug: bool = False
    cols_aug: bool = False
    # allocated projection: lowrank uses k_rows x k_cols, vector blocks k_rows = 1, k_cols = k
    k_rows: int = 0
    k_cols: int = 0
    offset: int = 0

    @property
    def rows_full(self) -> int:
        return self.rows + int(self.rows_aug)

    @property
    def cols_full(self) -> int:
        return self.cols + int(self.cols_aug)

    @property
    def full_dim(self) -> int:
        return self.rows_full * self.cols_full if self.kind == "lowrank" else self.numel

    @property
    def dim(self) -> int:
        return self.k_rows * self.k_cols

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["uses"] = [asdict(use) for use in self.uses]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        data = dict(data)
        data["uses"] = [Use(**use) for use in data["uses"]]
        return cls(**data)


@dataclass
class Plan:
    """The blocks of an index in feature order, and the coverage report of the model's parameters."""

    blocks: list[Block]
    coverage: dict[str, Any]

    @property
    def dim(self) -> int:
        return sum(block.dim for block in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [block.to_dict() for block in self.blocks], "coverage": self.coverage}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(blocks=[Block.from_dict(b) for b in data["blocks"]], coverage=data["coverage"])

    def structure(self) -> list[list[Any]]:
        """What must be equal for two plans to give comparable features."""
        return [[b.name, b.kind, b.params, b.shapes, b.k_rows, b.k_cols, b.offset] for b in self.blocks]


def is_conv1d(module: nn.Module) -> bool:
    """Hugging Face's GPT-2 ``Conv1D``: a linear layer whose weight is stored as [in, out].

    Detected by name and attributes so that the engine never imports transformers.
    """
    weight = getattr(module, "weight", None)
    return (type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "nx")
            and isinstance(weight, torch.Tensor) and tuple(weight.shape) == (module.nx, module.nf))


def _module_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Linear):
        return "linear"
    if is_conv1d(module):
        return "conv1d"
    if isinstance(module, nn.Embedding) and module.max_norm is None and not module.sparse:
        return "embedding"
    if (isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)):
        return "conv2d"
    if isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        return "layernorm"
    return None


def _matches(names: list[str], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


def make_plan(model: nn.Module, config: IndexConfig) -> Plan:
    """Choose the blocks for ``model`` under ``config`` and split ``config.projection_dim`` among them."""
    aliases: dict[int, list[str]] = {}
    params: dict[int, nn.Parameter] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), []).append(name)
        params[id(param)] = param
    total_trainable = sum(p.numel() for p in params.values() if p.requires_grad)

    selected: set[int] = set()
    excluded: list[dict[str, Any]] = []
    for pid, param in params.items():
        if not param.requires_grad:
            continue
        names = aliases[pid]
        if not _matches(names, config.include):
            excluded.append({"name": names[0], "shape": list(param.shape), "numel": param.numel(),
                             "reason": "matches no include pattern"})
        elif _matches(names, config.exclude):
            excluded.append({"name": names[0], "shape": list(param.shape), "numel": param.numel(),
                             "reason": "matches an exclude pattern"})
        else:
            selected.add(pid)

    blocks: dict[int, Block] = {}
    claimed: set[int] = set()
    for module_name, module in model.named_modules():
        kind = _module_kind(module)
        weight = getattr(module, "weight", None)
        if kind is None or not isinstance(weight, nn.Parameter) or id(weight) not in selected:
            continue
        bias = getattr(module, "bias", None)
        has_bias = (isinstance(bias, nn.Parameter) and id(bias) in selected and id(bias) not in claimed
                    and len(aliases[id(bias)]) == 1)
        if kind == "layernorm":
            block = Block(name=aliases[id(weight)][0], kind="layernorm", params=[aliases[id(weight)][0]],
                          shapes=[list(weight.shape)], numel=weight.numel())
            claimed.add(id(weight))
            if has_bias:
                block.params.append(aliases[id(bias)][0])
                block.shapes.append(list(bias.shape))
                block.numel += bias.numel()
                claimed.add(id(bias))
            block.uses.append(Use(module=module_name, kind=kind, has_bias=has_bias))
            blocks[id(weight)] = block
            continue
        block = blocks.get(id(weight))
        if block is None:
            if id(weight) in claimed:
                continue  # already a layernorm weight: never shared with a matrix in practice
            rows = weight.shape[0]
            block = Block(name=aliases[id(weight)][0], kind="lowrank", params=[aliases[id(weight)][0]],
                          shapes=[list(weight.shape)], numel=weight.numel(), rows=rows,
                          cols=weight.numel() // rows)
            blocks[id(weight)] = block
            claimed.add(id(weight))
        if block.kind != "lowrank":
            continue
        if has_bias:
            # Linear and Conv2d: bias = Σ δ, an extra input column; Conv1D: its input side is the rows.
            if kind == "conv1d":
                block.rows_aug = True
            else:
                block.cols_aug = True
            block.params.append(aliases[id(bias)][0])
            block.shapes.append(list(bias.shape))
            block.numel += bias.numel()
            claimed.add(id(bias))
        block.uses.append(Use(module=module_name, kind=kind, has_bias=has_bias))

    ordered = sorted(blocks.values(), key=lambda b: _first_position(model, b.params[0]))
    for pid in sorted(selected - claimed, key=lambda p: _first_position(model, aliases[p][0])):
        param = params[pid]
        ordered.append(Block(name=aliases[pid][0], kind="dense", params=[aliases[pid][0]],
                             shapes=[list(param.shape)], numel=param.numel()))
    if not ordered:
        raise ValueError("no trainable parameter matches the include/exclude patterns: nothing to attribute")
    _allocate(ordered, config.projection_dim)

    covered = sum(b.numel for b in ordered)
    coverage = {
        "total_trainable": total_trainable,
        "covered": covered,
        "share": covered / total_trainable if total_trainable else 0.0,
        "feature_dim": sum(b.dim for b in ordered),
        "blocks": [{"name": b.name, "method": b.kind, "params": [
            {"name": n, "shape": s} for n, s in zip(b.params, b.shapes, strict=True)],
            "numel": b.numel, "share": b.numel / total_trainable if total_trainable else 0.0,
            "dim": b.dim, "modules": [u.module for u in b.uses]} for b in ordered],
        "excluded": excluded,
    }
    if excluded:
        left = sum(e["numel"] for e in excluded)
        message = (f"attribution leaves out {len(excluded)} trainable parameter(s) "
                   f"({left} of {total_trainable} values, {left / max(total_trainable, 1):.1%}): "
                   + ", ".join(f"{e['name']} ({e['reason']})" for e in excluded[:8])
                   + (" ..." if len(excluded) > 8 else ""))
        logger.warning(message)
        warnings.warn(message, stacklevel=3)
    return Plan(blocks=ordered, coverage=coverage)


def _first_position(model: nn.Module, name: str) -> int:
    for position, (other, _) in enumerate(model.named_parameters(remove_duplicate=False)):
        if other == name:
            return position
    return 1 << 30


def _allocate(blocks: list[Block], budget: int) -> None:
    """Split ``budget`` dimensions among blocks in proportion to √(size), capped at each block's own size.

    Water-filling: a block smaller than its share is kept exactly and the rest is shared again. √ rather
    than size because the variance of a random projection's inner products falls as 1/k per block, so
    square-root shares balance the error between large and small layers (equal shares starve big layers,
    proportional ones starve small layers).
    """
    remaining = list(blocks)
    left = budget
    share: dict[int, float] = {}
    while remaining:
        weights = {id(b): math.sqrt(b.full_dim) for b in remaining}
        total = sum(weights.values())
        capped = [b for b in remaining if left * weights[id(b)] / total >= b.full_dim]
        if not capped:
            for b in remaining:
                share[id(b)] = left * weights[id(b)] / total
            break
        for b in capped:
            share[id(b)] = float(b.full_dim)
            left -= b.full_dim
            remaining.remove(b)
        if left <= 0:
            for b in remaining:
                share[id(b)] = 0.0
            break
    offset = 0
    for block in blocks:
        k = max(1, int(share[id(block)]))
        if block.kind == "lowrank":
            block.k_rows, block.k_cols = _factor(k, block.rows_full, block.cols_full)
        else:
            block.k_rows, block.k_cols = 1, min(k, block.numel)
        block.offset = offset
        offset += block.dim


def _factor(k: int, rows: int, cols: int) -> tuple[int, int]:
    """k_rows x k_cols <= k with the ratio of rows to cols, each side at most its full size."""
    if k >= rows * cols:
        return rows, cols
    k_rows = min(rows, max(1, round(math.sqrt(k * rows / cols))))
    k_cols = min(cols, max(1, k // k_rows))
    k_rows = min(rows, max(1, k // k_cols))
    return k_rows, k_cols


def derived_seed(seed: int, *parts: str) -> int:
    """A stable 63-bit seed for one projection matrix (Python's hash() changes between processes)."""
    digest = hashlib.sha256("|".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def projection(seed: int, block: str, side: str, k: int, n: int) -> torch.Tensor | None:
    """The transposed projection Pᵀ (n, k) with N(0, 1/k) entries, or None when k == n (kept exactly).

    Scaled by 1/√k so that projected inner products estimate the true gradient inner products.
    """
    if k >= n:
        return None
    generator = torch.Generator(device="cpu").manual_seed(derived_seed(seed, block, side))
    return torch.randn((n, k), generator=generator, dtype=torch.float32) / math.sqrt(k)
