"""Claim sets beyond the core catalog, one module per topic.

Each module here registers its claims with :func:`proofs_check.catalog.register` at import
time; :mod:`proofs_check.catalog` imports every module of this package (sorted by name) when
it loads. A new topic is one new module; nothing else needs editing.
"""
