"""The face segmenter: network, graph cut, masks at frame resolution."""
