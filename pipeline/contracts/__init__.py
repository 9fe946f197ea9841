"""Payload contracts: one JSON Schema per eduMe event type, and the check of loaded bodies.

- :mod:`pipeline.contracts.schema`: the contracts (package data under ``edume/``), shapes, and the
  validator (``missing`` / ``unexpected`` / ``type`` per dotted path).
- :mod:`pipeline.contracts.check`: :func:`~pipeline.contracts.check.check_new_deliveries`, run
  after each load, records deviations in the warehouse.
- :mod:`pipeline.contracts.lineage`: which staging columns and marts a path feeds.
- :mod:`pipeline.contracts.report`: what ``edume-pipeline contract-report`` prints and proposes.
"""
