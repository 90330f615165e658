"""The demo clip and pictures of the face model."""
