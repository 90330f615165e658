"""Face detection: every face in a frame, as square boxes sized for the segmenter."""
