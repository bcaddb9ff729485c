"""The nightly attribution job (ARCHITECTURE.md, "Flow of one night").

- ``planning``: which generations a night takes (its day's, plus late ones of closed days), cut into chunks.
- ``scoring``: one chunk through the version's adapter and index, top-k rows written in one transaction.
- ``settlement``: one (program, day): policy, shares and amounts, one balanced ledger entry.
- ``services``: ``night_run`` (in-process) and ``night_start`` (Celery chord), ``night_finalize``.
- ``selectors``: the generations behind a contributor's earnings, for the portal and statements.

Importing this package imports no torch; only ``scoring`` loads the engine, inside its functions.
"""
