"""The shipped face detector: CenterFace's weights, made ready for ONNX Runtime at any frame size."""
