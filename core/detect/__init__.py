"""Face detection: every face in a frame (core.detect.cnn, a CNN), as square boxes sized for the segmenter."""
