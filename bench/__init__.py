"""Benchmarks of the harness itself: what its ledger, checker and stack cost, and how much its numbers spread.

``python -m bench.run all`` (``make bench``) runs them all; ``locust_ceiling.py`` measures the load generator.
"""
