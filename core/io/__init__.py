"""Frame sources, frame checks and atomic files."""
