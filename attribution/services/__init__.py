"""Services of the attribution app: code that writes. Import from the submodules:

- ``attribution.services.ingest``: logging generations (the REST ingest path), with
  ``ingest_validation`` (the body, in plain Python) and ``ingest_sql`` (the two statements, PostgreSQL-tuned)
- ``attribution.services.api_keys``: creating, revoking and checking model-service API keys
- ``attribution.services.registry``: registering model versions and importing training manifests
- ``attribution.services.retention``: purging prompt and output text of attributed generations
- ``attribution.services.errors``: the errors they raise (status, code, per-item details)
"""
