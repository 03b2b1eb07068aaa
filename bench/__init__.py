"""Benchmarks of gradxform against optax: ``python -m bench --help``."""
