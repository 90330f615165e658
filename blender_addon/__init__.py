"""maskcap: occlusion-aware facial performance capture (Saito, Li and Li, ECCV 2016) in Blender.

Live capture and footage bake onto a character's 46 FACS shape keys and head, a demo head,
camera match, the paper's Fig. 5 compositing, and anonymised copies of footage. The engine is `core/`, vendored in this package.
"""
bl_info = {  # read by Blender versions that load legacy add-ons; extensions use blender_manifest.toml
    "name": "maskcap",
    "author": "maskcap contributors",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D Viewport > Sidebar > maskcap",
    "description": "Occlusion-aware facial performance capture from a webcam or footage",
    "category": "Animation",
}

import bpy

from . import (anonymize, bake, camera_match, compositor, demo_head, live, panel, preferences,  # noqa: E402
               preview, properties, retarget_ops)

_MODULES = (preferences, properties, retarget_ops, bake, live, demo_head, camera_match, compositor, preview, anonymize,
            panel)
CLASSES = tuple(cls for module in _MODULES for cls in module.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
    live.register_handlers()


def unregister():
    live.unregister_handlers()  # stops a live session and joins its threads first
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
