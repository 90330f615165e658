"""Takes and live feeds: tracked clips as arrays, retargeting, filters, head pose, previews."""
