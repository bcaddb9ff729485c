"""Form bodies the way Stripe's v1 API reads them: ``metadata[k]=v``, ``expand[0]=a``, ``a[b][c]=d``.

The official SDKs send every v1 request form-encoded with bracketed keys (lists always indexed,
``expand[0]=...``); curl users write ``expand[]=...``. Both decode to nested dicts and lists here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A key that cannot be decoded (``a[b`` or a value that is both a string and a hash)."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def _split_key(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [key]
    rest = "[" + rest
    parts = _SEGMENT.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest or not head:
        raise FormError(f"Invalid parameter name: {key}", key)
    return [head, *parts]


def _listify(node: Any) -> Any:
    """Dicts whose keys are all indexes (``0``, ``1`` ...) or appends become lists, recursively."""
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(isinstance(k, int) for k in node):
            return [node[k] for k in sorted(node)]
        return {str(k): v for k, v in node.items()}
    return node


def decode_form(body: str) -> dict[str, Any]:
    """Decode a form body (or query string) into nested dicts/lists of strings."""
    root: dict[Any, Any] = {}
    append_counters: dict[int, int] = {}
    for key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        path = _split_key(key)
        node: dict[Any, Any] = root
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if part == "":
                # `a[]=x`: the next free index of this list
                counter = append_counters.get(id(node), 0)
                append_counters[id(node)] = counter + 1
                part_key: Any = counter
            elif part.isdigit() and depth > 0:
                part_key = int(part)
            else:
                part_key = part
            if last:
                if isinstance(node.get(part_key), dict):
                    raise FormError(f"Invalid value for {key}: a hash was expected", key)
                node[part_key] = value
            else:
                child = node.setdefault(part_key, {})
                if not isinstance(child, dict):
                    raise FormError(f"Invalid hash for {key}", key)
                node = child
    return _listify(root)
