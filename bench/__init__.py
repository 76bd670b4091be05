"""Benchmarks for Mesteri: the harness (``bench.harness``) and the runs built on it.

``python -m bench.run`` (or ``make bench``) measures the app against a minimal FastAPI +
asyncpg baseline in the same run. Benchmarks report figures; they never fail on timing.
"""
