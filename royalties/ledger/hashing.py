"""The content hash of a journal entry: what idempotent replays are compared on and check_ledger re-derives.

It covers the money and nothing else: kind, period, the entry it reverses, the postings as a sorted
multiset of (account, amount), and the accrual detail rows sorted by their identity. Memo, metadata and who
posted are descriptions, not content: a replay with a reworded memo is the same entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

HASH_VERSION = "ledger-entry-v1"

# (period day, program id, contributor id, work id, amount, baseline, attributed, generation count, ownership bps)
AccrualTuple = tuple[dt.date, int, int, int, int, int, int, int, int | None]


def entry_content_hash(
    *,
    kind: str,
    period_day: dt.date,
    reverses_id: int | None,
    lines: Iterable[tuple[int, int]],
    accruals: Iterable[AccrualTuple] = (),
) -> str:
    """SHA-256 (hex) of an entry's content; independent of the order lines and accruals are given in."""
    digest = hashlib.sha256()
    digest.update(f"{HASH_VERSION}|{kind}|{period_day.isoformat()}|{reverses_id or ''}\n".encode())
    for account_id, amount in sorted((int(a), int(m)) for a, m in lines):
        digest.update(f"p {account_id} {amount}\n".encode())
    rows = sorted(
        (d.isoformat(), int(p), int(c), int(w), int(a), int(b), int(t), int(g), "-" if s is None else str(int(s)))
        for d, p, c, w, a, b, t, g, s in accruals
    )
    for row in rows:
        digest.update(("a " + " ".join(str(x) for x in row) + "\n").encode())
    return digest.hexdigest()
