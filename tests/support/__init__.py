"""Helpers shared by the tests: the real services (:mod:`support.stack`), generated
scenarios, reference tables, WAV writing and the courtyard test world. On the import
path through ``pythonpath`` in ``pyproject.toml`` (no ``sys.path`` edits in tests)."""
