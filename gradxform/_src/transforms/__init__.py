"""Primitive transformations, one family per module."""
