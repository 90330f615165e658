"""Preview in an Image Editor: the camera frame with the face mask tinted and landmarks drawn.

The consumer thread makes a small RGBA picture at most every 0.2 s (core.capture.preview.mask_preview_rgba),
only while the preview image exists; the main thread only copies its pixels into the image.
"""
import bpy
import numpy as np

IMAGE_NAME = "maskcap_preview"


def wanted() -> bool:
    return IMAGE_NAME in bpy.data.images


def preview_image(width: int, height: int):
    """The preview Image, made or resized to width x height."""
    image = bpy.data.images.get(IMAGE_NAME)
    if image is None:
        image = bpy.data.images.new(IMAGE_NAME, width, height, alpha=False)
    elif tuple(image.size) != (width, height):
        image.scale(width, height)
    return image


def show(rgba: np.ndarray) -> None:
    """Copy a (H, W, 4) float32 picture, bottom row first, into the preview image."""
    h, w = rgba.shape[:2]
    image = preview_image(w, h)
    image.pixels.foreach_set(np.ascontiguousarray(rgba, np.float32).ravel())
    image.update()
    for window in bpy.context.window_manager.windows if bpy.context.window_manager else ():
        for area in window.screen.areas:
            if area.type == 'IMAGE_EDITOR' and area.spaces.active.image == image:
                area.tag_redraw()


CLASSES = ()
