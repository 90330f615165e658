"""A small z-buffer rasteriser for pictures and masks of the face model (no OpenGL needed).

`rasterize` gives, per pixel, the index of the nearest triangle (-1 where none); shading,
masks and overlays are cheap lookups into that buffer.
"""
from __future__ import annotations

import numba
import numpy as np

from .camera import project


@numba.njit(cache=False, nogil=True)
def _raster(px: np.ndarray, depth: np.ndarray, tris: np.ndarray, height: int, width: int):
    zbuf = np.full((height, width), np.inf, np.float64)
    ids = np.full((height, width), -1, np.int32)
    for k in range(tris.shape[0]):
        a, b, c = tris[k, 0], tris[k, 1], tris[k, 2]
        ax, ay, bx, by, cx, cy = px[a, 0], px[a, 1], px[b, 0], px[b, 1], px[c, 0], px[c, 1]
        za, zb, zc = depth[a], depth[b], depth[c]
        if za <= 0 or zb <= 0 or zc <= 0:
            continue
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12:
            continue
        x0 = max(int(np.floor(min(ax, bx, cx))), 0)
        x1 = min(int(np.ceil(max(ax, bx, cx))), width - 1)
        y0 = max(int(np.floor(min(ay, by, cy))), 0)
        y1 = min(int(np.ceil(max(ay, by, cy))), height - 1)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                w0 = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / area
                w1 = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / area
                w2 = 1.0 - w0 - w1
                if w0 < 0 or w1 < 0 or w2 < 0:
                    continue
                z = w0 * za + w1 * zb + w2 * zc
                if z < zbuf[y, x]:
                    zbuf[y, x] = z
                    ids[y, x] = k
    return ids, zbuf


def rasterize(vertices_cam: np.ndarray, triangles: np.ndarray, focal_px: float, center, image_size):
    """Triangle index per pixel (H, W) int32, -1 for background, and the depth buffer."""
    w, h = image_size
    px = project(vertices_cam, focal_px, np.asarray(center, np.float64)).astype(np.float64)
    return _raster(px, vertices_cam[:, 2].astype(np.float64), triangles.astype(np.int64), int(h), int(w))


def triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    n = np.cross(b - a, c - a)
    return n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)


def shade(vertices_cam: np.ndarray, triangles: np.ndarray, tri_ids: np.ndarray, colors: np.ndarray,
          light_dir=(0.3, -0.4, -1.0)) -> np.ndarray:
    """Lambert-shaded BGR uint8 image from a triangle id buffer; colors (T, 3) per triangle."""
    normals = triangle_normals(vertices_cam, triangles)
    light = np.asarray(light_dir, np.float64)
    light /= np.linalg.norm(light)
    lambert = np.abs(normals @ light) * 0.75 + 0.25
    tri_rgb = np.clip(colors * lambert[:, None], 0, 255).astype(np.uint8)
    out = np.zeros((*tri_ids.shape, 3), np.uint8)
    hit = tri_ids >= 0
    out[hit] = tri_rgb[tri_ids[hit]]
    return out


_REGION_BGR = {
    "face": (150, 170, 215),
    "head_and_neck": (135, 155, 200),
    "mouth_socket": (90, 90, 160),
    "eye_socket": (120, 130, 180),
    "eyeball": (235, 235, 235),
    "teeth_and_gums": (210, 220, 230),
    "ears": (145, 165, 212),
    "face_outer": (145, 165, 212),
}


def render_face(model, vertices_model: np.ndarray, rotation, translation, focal_px: float, image_size,
                background: np.ndarray | None = None, alpha: float = 1.0):
    """A shaded picture of the face model posed in the camera, over background when given.

    Returns (image BGR uint8, triangle id buffer, triangle -> region index).
    """
    from .camera import principal_point

    tris_q = np.concatenate([model.quads[:, [0, 1, 2]], model.quads[:, [0, 2, 3]]])
    regions = np.concatenate([model.quad_region, model.quad_region])
    keep = (tris_q[:, 0] != tris_q[:, 1]) & (tris_q[:, 1] != tris_q[:, 2]) & (tris_q[:, 0] != tris_q[:, 2])
    tris, regions = tris_q[keep], regions[keep]
    cam = vertices_model @ np.asarray(rotation).T + np.asarray(translation)
    ids, _ = rasterize(cam, tris, focal_px, principal_point(image_size), image_size)
    names = model.meta["regions"]
    colors = np.array([_REGION_BGR.get(names[r], (180, 180, 180)) for r in range(len(names))], np.float64)[regions]
    img = shade(cam, tris, ids, colors)
    if background is not None:
        bg = background if background.ndim == 3 else np.repeat(background[:, :, None], 3, axis=2)
        hit = (ids >= 0)[:, :, None]
        img = np.where(hit, (alpha * img + (1 - alpha) * bg).astype(np.uint8), bg)
    return img, ids, regions
