"""Recipe of models/segmenter.onnx: the two-stream network, its data, training and int8 export."""
