"""Datasets' splits, scenes and metrics that bench/ and tests/ share; offline, never shipped."""
