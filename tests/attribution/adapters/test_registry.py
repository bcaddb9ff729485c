"""Loading adapters from a version's dotted path: every failure is an AdapterError naming the version."""

from __future__ import annotations

import sys

import pytest
import torch

from attribution.adapters import AdapterError, ModelAdapter, WorkInput, adapter_load
from attribution.adapters.base import path_fingerprint
from attribution.adapters.torch_module import TorchModuleAdapter
from tests.attribution.adapters.helpers import TinyRegressor

LABEL = "storyteller@v7"
GENERIC = "attribution.adapters.torch_module.TorchModuleAdapter"
GENERIC_CONFIG = {
    "module": "tests.attribution.adapters.helpers.TinyRegressor",
    "module_kwargs": {"hidden": 4},
    "collate_works": "tests.attribution.adapters.helpers.collate_works",
    "collate_generations": "tests.attribution.adapters.helpers.collate_generations",
}


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    torch.save(TinyRegressor(hidden=4).state_dict(), tmp_path / "model.pt")
    return tmp_path


@pytest.mark.parametrize(
    ("dotted", "message"),
    [
        ("", "no adapter is set"),
        ("NoDots", "not a dotted path"),
        ("attribution.adapters.nope.Adapter", "module 'attribution.adapters.nope' not found"),
        ("attribution.adapters.torch_module.Missing", "has no attribute 'Missing'"),
        ("tests.attribution.adapters.helpers.TinyRegressor", "is not a ModelAdapter subclass"),
    ],
)
def test_a_missing_or_wrong_adapter_names_the_version(dotted, message, tiny_checkpoint):
    with pytest.raises(AdapterError, match=message) as info:
        adapter_load(dotted, str(tiny_checkpoint), GENERIC_CONFIG, LABEL)
    assert str(info.value).startswith(f"model version {LABEL!r}: ")
    assert info.value.model_version_label == LABEL


def test_an_adapter_module_that_fails_to_import_is_reported(tmp_path, monkeypatch):
    (tmp_path / "broken_adapter_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AdapterError, match=r"storyteller@v7.*importing 'broken_adapter_mod' failed: RuntimeError"):
        adapter_load("broken_adapter_mod.Adapter", "", {}, LABEL)
    sys.modules.pop("broken_adapter_mod", None)


def test_a_missing_checkpoint_names_the_version(tmp_path):
    with pytest.raises(AdapterError, match=rf"^model version '{LABEL}': checkpoint .*does not exist"):
        adapter_load(GENERIC, str(tmp_path / "gone"), GENERIC_CONFIG, LABEL)
    with pytest.raises(AdapterError, match="needs a checkpoint_uri"):
        adapter_load(GENERIC, "", GENERIC_CONFIG, LABEL)
    with pytest.raises(AdapterError, match="unsupported checkpoint URI scheme"):
        adapter_load(GENERIC, "s3://bucket/model", GENERIC_CONFIG, LABEL)


def test_a_broken_checkpoint_fails_at_load_naming_the_version(tiny_checkpoint):
    (tiny_checkpoint / "model.pt").write_bytes(b"not a torch file at all")
    adapter = adapter_load(GENERIC, str(tiny_checkpoint), GENERIC_CONFIG, LABEL)
    with pytest.raises(AdapterError, match=rf"{LABEL}.*cannot load TinyRegressor"):
        adapter.load_model()


def test_weights_of_another_shape_fail_at_load(tiny_checkpoint):
    adapter = adapter_load(GENERIC, str(tiny_checkpoint), {**GENERIC_CONFIG, "module_kwargs": {"hidden": 9}}, LABEL)
    with pytest.raises(AdapterError, match=rf"(?s){LABEL}.*size mismatch"):
        adapter.load_model()


def test_missing_config_paths_are_named(tiny_checkpoint):
    config = {k: v for k, v in GENERIC_CONFIG.items() if k != "collate_works"}
    with pytest.raises(AdapterError, match=r"config.collate_works \(a dotted path\) is required"):
        adapter_load(GENERIC, str(tiny_checkpoint), config, LABEL)
    with pytest.raises(AdapterError, match=r"config.module = 'no.such.Thing' cannot be imported"):
        adapter_load(GENERIC, str(tiny_checkpoint), {**GENERIC_CONFIG, "module": "no.such.Thing"}, LABEL)


def test_generic_adapter_loads_any_module_with_a_per_example_loss(tiny_checkpoint):
    adapter = adapter_load("torch-module", f"file://{tiny_checkpoint}", GENERIC_CONFIG, LABEL)
    assert isinstance(adapter, ModelAdapter)
    assert isinstance(adapter, TorchModuleAdapter)
    model = adapter.load_model()
    assert not model.training
    works = [WorkInput(id=i, kind="text", text="x" * (10 * i + 1)) for i in range(5)]
    batch = next(iter(adapter.work_batches(works, 8)))
    losses = adapter.loss_fn(model, batch)
    assert losses.shape == (5,)
    torch.testing.assert_close(losses, model.per_example_loss(batch))
    # A loss named in the config replaces the module's own.
    custom = adapter_load(
        GENERIC,
        str(tiny_checkpoint),
        {**GENERIC_CONFIG, "loss": "tests.attribution.adapters.helpers.absolute_loss"},
        LABEL,
    )
    torch.testing.assert_close(custom.loss_fn(model, batch), model.per_example_loss(batch).sqrt())


def test_fingerprint_follows_the_checkpoint_files(tiny_checkpoint):
    adapter = adapter_load(GENERIC, str(tiny_checkpoint), GENERIC_CONFIG, LABEL)
    before = adapter.checkpoint_fingerprint()
    assert before == path_fingerprint(tiny_checkpoint)
    (tiny_checkpoint / ".cache").mkdir()
    (tiny_checkpoint / ".cache" / "lock").write_text("x")
    assert adapter.checkpoint_fingerprint() == before  # caches do not make an index stale
    torch.manual_seed(1)
    torch.save(TinyRegressor(hidden=4).state_dict(), tiny_checkpoint / "model.pt")
    assert adapter.checkpoint_fingerprint() != before
