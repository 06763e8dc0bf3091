"""Reproducible benchmarks of tickwork against its peers; ``python -m bench.run``."""
