"""Webhooks: the events wamgr reports (:mod:`.events`), how a delivery is signed
(:mod:`.signing`) and the worker that posts them from the outbox (:mod:`.sender`).

The outbox rows themselves (written in the transaction of the change they report) are SQL,
in :mod:`wamgr.store.outbox`.
"""
