"""Every face in footage: following between detections, anonymisation, the batch command."""
