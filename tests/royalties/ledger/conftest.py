from __future__ import annotations

import pytest

from tests.royalties.ledger.factories import make_contributor, make_program


@pytest.fixture
def program(db):
    return make_program()


@pytest.fixture
def contributors(db):
    return [make_contributor() for _ in range(3)]
