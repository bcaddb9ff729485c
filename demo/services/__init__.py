"""The demo's steps, each idempotent (keyed by stable natural keys) and each through the platform's own services:

- ``people``: the demo people of every role, verified addresses, staff TOTP with fixed demo secrets
- ``catalog``: works from data shipped in installed packages, co-ownership, an opt-out, a dispute
- ``models``: training the reference models locally, registering versions with manifests, programs, indexes
- ``model_service``: playing a model service that logs generations over the real REST API with an API key
- ``night``: the nightly attribution of the demo day, posting the ledger entries
- ``payouts``: the local fake Stripe server, onboarding, a payout run created by one finance user and
  approved by another, executed, with statements and a reconciliation
"""
