"""Tracking: the DDE regressor, the per-frame tracker, still photos, adaptation, the threaded pipeline."""
