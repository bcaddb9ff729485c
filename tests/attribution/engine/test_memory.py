"""A streaming build keeps memory bounded: building 12x more works than fit a shard costs no more memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import resource, sys, tempfile
import torch
from torch import nn
from attribution.engine import GradientIndex, IndexConfig

works, dim = int(sys.argv[1]), 1024
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 32))

def batches():  # generated on the fly: the data itself never sits in memory
    for start in range(0, works, 500):
        g = torch.Generator().manual_seed(start)
        yield torch.randn(500, 64, generator=g), torch.randint(0, 32, (500,), generator=g)

def loss_fn(m, b):
    return torch.nn.functional.cross_entropy(m(b[0]), b[1], reduction="none")

config = IndexConfig(projection_dim=dim, shard_size=1000, batch_rows=500, curvature="ekfac")
with tempfile.TemporaryDirectory() as path:
    index = GradientIndex.build(model, loss_fn, batches, config=config, path=path + "/idx")
    values, rows = index.top_k(model, loss_fn, [next(batches())], k=5)
    assert index.num_works == works and rows.shape == (500, 5)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def peak_rss(works: int) -> int:
    result = subprocess.run([sys.executable, "-c", PROGRAM, str(works)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_number_of_works():
    # given builds of 1,000 and 12,000 works in 1,000-row shards; the features of 12,000 works alone
    # would take 12,000 x 1,024 x 4 B = 48 MiB as float32 (24 MiB as float16), a dense top-k 23 MiB
    small, large = peak_rss(1_000), peak_rss(12_000)
    # then the larger build's peak is within a fraction of that (shard buffers, page cache of one shard)
    assert large - small < 16 * 2**20, (small, large)
