"""What tests in several folders and the benches share: helpers that run real things.

Importable as `tests.support` from the repository root: pytest puts the root on the path
(`pythonpath` in pyproject.toml), and a bench script, run as `python bench/x.py`, puts it
there itself.
"""
