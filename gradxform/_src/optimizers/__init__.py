"""Optimizers, grouped by family: each is a short ``chain`` of primitives."""
