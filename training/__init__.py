"""Offline data preparation, training and evaluation; never shipped in the add-on."""
