"""Per-example projected gradient features in one forward and one backward pass.

For every low-rank block the forward hook projects the module's input side at once (x @ P_inᵀ, or a row
gather of P_inᵀ for an embedding's one-hot input), the backward pass yields the output gradients δ, which
are projected the same way, and the per-example feature is Σ_t (P δ_t)(P x_t)ᵀ. Only the gradients with
respect to the hooked modules' outputs are asked of autograd, so the weight gradients a training step
would compute are skipped entirely. Parameters no hook can handle go through ``torch.func`` (vmap of
grad), in a second pass that runs only when such parameters take part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils import _pytree as pytree

from attribution.engine.layers import Block, Plan, projection

LossFn = Callable[[nn.Module, Any], torch.Tensor]


@dataclass
class CurvatureStats:
    """Sums gathered during a build, from which every preconditioner is made (float64)."""

    n: int = 0
    rows: dict[str, torch.Tensor] = field(default_factory=dict)  # Σ_t (P r_t)(P r_t)ᵀ  (k_rows, k_rows)
    cols: dict[str, torch.Tensor] = field(default_factory=dict)  # Σ_t (P c_t)(P c_t)ᵀ  (k_cols, k_cols)
    sqnorm: dict[str, float] = field(default_factory=dict)  # Σ_i ||φ_i,block||²
    vgram: dict[str, torch.Tensor] = field(default_factory=dict)  # vector blocks: Σ_i φφᵀ  (k, k)
    gram: torch.Tensor | None = None  # Σ_i φ_i φ_iᵀ over all dims  (K, K)
    lam: dict[str, torch.Tensor] = field(default_factory=dict)  # EK-FAC: Σ_i (Q_rᵀ G_i Q_c)²
    # eigendecompositions made from the sums above, shared by every preconditioner view (never saved)
    cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)


@dataclass
class _Record:
    block: Block
    use_kind: str
    input_side: torch.Tensor  # projected input side, (M, k)
    output: torch.Tensor  # the module output whose gradient is δ
    xhat: torch.Tensor | None = None  # layernorm: normalised input, (M, n)


class _LossModule(nn.Module):
    """Lets ``torch.func.functional_call`` swap parameters under a user's ``loss_fn(model, batch)``."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


class Featurizer:
    """Computes the features of one model under one plan; the projection matrices live here."""

    def __init__(self, model: nn.Module, plan: Plan, seed: int, device: str = "cpu") -> None:
        self.model = model
        self.plan = plan
        self.device = torch.device(device)
        self.dim = plan.dim
        modules = dict(model.named_modules())
        self.modules = {use.module: modules[use.module] for block in plan.blocks for use in block.uses}
        self.params = dict(model.named_parameters(remove_duplicate=False))
        self.proj_rows: dict[str, torch.Tensor | None] = {}
        self.proj_cols: dict[str, torch.Tensor | None] = {}
        for block in plan.blocks:
            if block.kind == "lowrank":
                self.proj_rows[block.name] = _to(projection(seed, block.name, "rows", block.k_rows,
                                                            block.rows_full), self.device)
                self.proj_cols[block.name] = _to(projection(seed, block.name, "cols", block.k_cols,
                                                            block.cols_full), self.device)
            else:
                self.proj_cols[block.name] = _to(projection(seed, block.name, "vector", block.k_cols,
                                                            block.numel), self.device)
        self.dense = [b for b in plan.blocks if b.kind == "dense"]

    # ----------------------------------------------------------------------------------------------------
    def features(self, loss_fn: LossFn, batch: Any, stats: CurvatureStats | None = None) -> torch.Tensor:
        """Projected per-example gradients of ``loss_fn(model, batch)``: (B, K) float32."""
        records: list[_Record] = []
        handles = []
        self._batch_size = _guess_batch_size(batch)  # checked against the losses below
        for block in self.plan.blocks:
            for use in block.uses:
                hook = self._forward_hook(block, use.kind, use.has_bias, records)
                handles.append(self.modules[use.module].register_forward_hook(hook))
        was_training = self.model.training
        if was_training:
            self.model.eval()  # dropout off and batch statistics frozen: examples must not see each other
        try:
            with torch.enable_grad():
                losses = loss_fn(self.model, batch)
                if losses.dim() != 1:
                    raise ValueError(f"loss_fn must return per-example losses of shape [B], got "
                                     f"{tuple(losses.shape)}")
                size = losses.shape[0]
                expanded = any(r.input_side.shape[0] != 0 and r.output.shape[0] == self._batch_size != 1
                               for r in records)
                if size != self._batch_size and expanded:
                    raise ValueError(f"attribution: the batch's first tensor has {self._batch_size} rows but "
                                     f"loss_fn returned {size} losses; put the batch dimension first")
                live = [r for r in records if r.output.requires_grad]
                grads = torch.autograd.grad(losses.sum(), [r.output for r in live], allow_unused=True) \
                    if live else ()
            for handle in handles:
                handle.remove()
            handles = []
            # Not zero-filled: each block's first contribution is written in place (a tied weight's later uses
            # add to it) and only the blocks that got no gradient at all are zeroed below.
            out = torch.empty(size, self.dim, dtype=torch.float32, device=self.device)
            self._written: set[str] = set()
            with torch.no_grad():
                for record, out_grad in zip(live, grads, strict=True):
                    if out_grad is not None:
                        self._accumulate(record, out_grad, size, out, stats)
                if self.dense:
                    self._dense_features(loss_fn, batch, size, out)
                for block in self.plan.blocks:
                    if block.name not in self._written:
                        out[:, block.offset:block.offset + block.dim] = 0.0
            if stats is not None:
                with torch.no_grad():
                    self._update_stats(out, stats)
        finally:
            for handle in handles:
                handle.remove()
            if was_training:
                self.model.train()
        return out

    # ----------------------------------------------------------------------------------------------------
    def _forward_hook(self, block: Block, kind: str, has_bias: bool, records: list[_Record]):
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"attribution: module {type(module).__name__} returned {type(output).__name__}; "
                                f"only modules returning one tensor can be hooked")
            with torch.no_grad():
                record = self._project_side(module, block, kind, has_bias, inputs[0], output)
            # A module run once for the whole batch (GPT-2's position embedding sees (1, T) ids and is
            # broadcast later) has no per-example output gradient. Expanding its output to the batch here
            # changes no value downstream but gives autograd one δ per example.
            size = self._batch_size
            if size > 1 and output.dim() >= 2 and output.shape[0] == 1 and kind != "conv2d":
                output = output.expand(size, *output.shape[1:])
                record.output = output
                record.input_side = record.input_side.repeat(size, 1)
                if record.xhat is not None:
                    record.xhat = record.xhat.repeat(size, 1)
                records.append(record)
                return output
            records.append(record)
            return None
        return hook

    def _project_side(self, module: nn.Module, block: Block, kind: str, has_bias: bool, x: torch.Tensor,
                      output: torch.Tensor) -> _Record:
        if kind == "layernorm":
            n = block.numel if not has_bias else block.numel // 2
            xhat = F.layer_norm(x.detach().float(), module.normalized_shape, eps=module.eps).reshape(-1, n)
            return _Record(block, kind, xhat, output, xhat)
        if kind == "embedding":
            ids = x.reshape(-1)
            proj = self.proj_rows[block.name]
            side = (proj[ids] if proj is not None else
                    F.one_hot(ids, block.rows_full).to(torch.float32))  # (M, k_rows)
            if module.padding_idx is not None:
                side = side * (ids != module.padding_idx).unsqueeze(1)
            return _Record(block, kind, side, output)
        if kind == "conv2d":
            patches = F.unfold(x.detach().float(), module.kernel_size, dilation=module.dilation,
                               padding=module.padding, stride=module.stride)  # (B, n, L)
            flat = patches.transpose(1, 2).reshape(-1, patches.shape[1])
            proj, aug = self.proj_cols[block.name], block.cols_aug
        elif kind == "conv1d":
            flat = x.detach().float().reshape(-1, x.shape[-1])
            proj, aug = self.proj_rows[block.name], block.rows_aug
        else:  # linear
            flat = x.detach().float().reshape(-1, x.shape[-1])
            proj, aug = self.proj_cols[block.name], block.cols_aug
        return _Record(block, kind, _project_input(flat, proj, aug, has_bias), output)

    def _accumulate(self, record: _Record, out_grad: torch.Tensor, size: int, out: torch.Tensor,
                    stats: CurvatureStats | None) -> None:
        block, kind = record.block, record.use_kind
        if kind == "conv2d":
            delta = out_grad.float().permute(0, 2, 3, 1).reshape(-1, out_grad.shape[1])
        else:
            delta = out_grad.float().reshape(-1, out_grad.shape[-1])  # (M, d_out)
        if delta.shape[0] % size or record.input_side.shape[0] != delta.shape[0]:
            raise ValueError(f"attribution: module {record.block.name!r} was called with inputs whose leading "
                             f"dimension is neither the batch nor 1 ({delta.shape[0]} positions for {size} examples)")
        positions = delta.shape[0] // size
        if kind == "layernorm":
            xhat = record.xhat.reshape(size, positions, -1)
            d = delta.reshape(size, positions, -1)
            vec = (d * xhat).sum(1)  # (B, n)
            if block.numel != vec.shape[1]:
                vec = torch.cat([vec, d.sum(1)], dim=1)  # weight then bias, as in block.params
            proj = self.proj_cols[block.name]
            self._put(out, block, vec if proj is None else vec @ proj)
            return
        if kind in ("linear", "conv2d"):
            rows_side = _project_output(delta, self.proj_rows[block.name], block.rows_full)
            cols_side = record.input_side
        else:  # conv1d, embedding: the input side is the weight's rows
            rows_side = record.input_side
            cols_side = _project_output(delta, self.proj_cols[block.name], block.cols_full)
        rows3 = rows_side.reshape(size, positions, -1).transpose(1, 2)  # (B, k_rows, T)
        cols3 = cols_side.reshape(size, positions, -1)  # (B, T, k_cols)
        # Σ_t r_t c_tᵀ written straight into the block's columns of ``out`` (a strided view, no temporary);
        # with one position per example it is an outer product, which a broadcast multiply does ~5x faster
        # than bmm on a CPU, with the same result (a single product per entry).
        target = out[:, block.offset:block.offset + block.dim].view(size, block.k_rows, block.k_cols)
        first = block.name not in self._written
        if positions == 1:
            if first:
                torch.mul(rows3, cols3, out=target)
            else:
                target.addcmul_(rows3, cols3)
        elif first:
            torch.bmm(rows3, cols3, out=target)
        else:
            target.baddbmm_(rows3, cols3)
        self._written.add(block.name)
        if stats is not None:
            _add(stats.rows, block.name, rows_side.T.double() @ rows_side.double())
            _add(stats.cols, block.name, cols_side.T.double() @ cols_side.double())

    def _put(self, out: torch.Tensor, block: Block, value: torch.Tensor) -> None:
        """Write a block's first contribution, add any later one (a weight read by several modules)."""
        target = out[:, block.offset:block.offset + block.dim]
        if block.name in self._written:
            target += value
        else:
            target.copy_(value)
            self._written.add(block.name)

    def _dense_features(self, loss_fn: LossFn, batch: Any, size: int, out: torch.Tensor) -> None:
        """Per-sample gradients of the parameters no hook handles, via vmap(grad(...))."""
        wrapper = _LossModule(self.model, loss_fn)
        names = [b.params[0] for b in self.dense]
        params = {f"model.{name}": self.params[name].detach() for name in names}
        leaves, spec = pytree.tree_flatten(batch)
        in_dims = pytree.tree_unflatten(
            [0 if isinstance(leaf, torch.Tensor) and leaf.dim() > 0 and leaf.shape[0] == size else None
             for leaf in leaves], spec)

        def one(p: dict[str, torch.Tensor], example: Any) -> torch.Tensor:
            single = pytree.tree_map(lambda t: t.unsqueeze(0) if isinstance(t, torch.Tensor) else t, example)
            return functional_call(wrapper, p, (single,), strict=False)[0]

        with torch.enable_grad():
            # "different": a loss_fn that draws its targets (a fisher_loss_fn) gets one draw per example here,
            # independent of the hooked pass's draw. Each block's own curvature stays the Fisher's; only the
            # cross terms between these parameters and the hooked ones (TRAK's full Gram) lose correlation.
            grads = vmap(grad(one), in_dims=(None, in_dims), randomness="different")(params, batch)
        for block, name in zip(self.dense, names, strict=True):
            vec = grads[f"model.{name}"].reshape(size, -1).float()
            proj = self.proj_cols[block.name]
            self._put(out, block, vec if proj is None else vec @ proj)

    def _update_stats(self, out: torch.Tensor, stats: CurvatureStats) -> None:
        stats.n += out.shape[0]
        for block in self.plan.blocks:
            part = out[:, block.offset:block.offset + block.dim].double()
            stats.sqnorm[block.name] = stats.sqnorm.get(block.name, 0.0) + float((part * part).sum())
            if block.kind != "lowrank":
                _add(stats.vgram, block.name, part.T @ part)
        if stats.gram is not None:
            stats.gram += out.T.double() @ out.double()


def _guess_batch_size(batch: Any) -> int:
    """Rows of the batch's first tensor (the common layouts first: the full pytree walk costs more)."""
    first = batch
    while isinstance(first, (tuple, list)) and first:
        first = first[0]
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    if isinstance(first, torch.Tensor):
        return first.shape[0] if first.dim() > 0 else 0
    leaves = [leaf for leaf in pytree.tree_leaves(batch) if isinstance(leaf, torch.Tensor) and leaf.dim() > 0]
    return leaves[0].shape[0] if leaves else 0


def _to(tensor: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(device)


def _project_input(flat: torch.Tensor, proj: torch.Tensor | None, aug: bool, has_bias: bool) -> torch.Tensor:
    """[x, 1] @ Pᵀ without building [x, 1]: the bias column is the last row of Pᵀ (zero if no bias here)."""
    n = flat.shape[1]
    if proj is None:
        if not aug:
            return flat
        ones = torch.full((flat.shape[0], 1), 1.0 if has_bias else 0.0, dtype=flat.dtype, device=flat.device)
        return torch.cat([flat, ones], dim=1)
    if aug and has_bias:
        return torch.addmm(proj[n], flat, proj[:n])
    return flat @ proj[:n]


def _project_output(delta: torch.Tensor, proj: torch.Tensor | None, full: int) -> torch.Tensor:
    """δ @ Pᵀ; the output side never carries a bias column (a tied use's bias, if any, is zero here)."""
    if proj is None:
        return delta if delta.shape[1] == full else F.pad(delta, (0, full - delta.shape[1]))
    return delta @ proj[: delta.shape[1]]


def _add(store: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> None:
    if key in store:
        store[key] += value
    else:
        store[key] = value.clone()
