"""The demo character: the face model's neutral head with the 46 FACS shape keys and a head control.

Built from models/face_model.npz (core.face.face_model), in metres, in the scene's head axes (by
default facing -Y with +Z up), so that a new user sees results without a rig of their own.
"""

import bpy
import numpy as np

from . import retarget_ops
from . import core
from .core.capture import head_pose
from .properties import ensure_channels

MESH_NAME = "maskcap_head"
CONTROL_NAME = "maskcap_head_control"
SKIN = (0.8, 0.6, 0.5, 1.0)
DEMO_PROP = "maskcap_demo_identity"


def _to_blender(points_cm: np.ndarray, axes: np.ndarray) -> np.ndarray:
    return (points_cm.astype(np.float64) @ axes.T) * 0.01


def skin_material():
    """maskcap_skin: a light skin tone, a little subsurface scattering and a soft sheen of
    specular, so that the render shows the face's shape (and the viewport colour for Solid)."""
    material = bpy.data.materials.get("maskcap_skin") or bpy.data.materials.new("maskcap_skin")
    material.diffuse_color = SKIN
    material.use_nodes = True
    shader = next((n for n in material.node_tree.nodes if n.type == 'BSDF_PRINCIPLED'), None)
    if shader is None:
        return material
    values = {"Base Color": SKIN, "Roughness": 0.45, "Subsurface Weight": 0.08,
              "Subsurface Radius": (0.9, 0.35, 0.2), "Subsurface Scale": 0.004, "Specular IOR Level": 0.35,
              "Coat Weight": 0.0}
    for name, value in values.items():
        socket = shader.inputs.get(name)
        if socket is not None:  # the Principled BSDF's inputs are 4.0's and later's names
            socket.default_value = value
    return material


# Key and fill, in the head's frame (units of metres: x the subject's left, y up, z out of the face):
# the key high on the subject's right and in front, the fill low on the left at a third of its power,
# so that the face is lit from the camera's side and its shape reads; (name, place, watts, size)
LIGHTS = (("maskcap_key", (-0.45, 0.35, 0.7), 8.0, 0.3),
          ("maskcap_fill", (0.55, 0.0, 0.6), 2.0, 0.5))


def add_lights(scene, collection, axes: np.ndarray) -> None:
    """Area lights aimed at the head (at the origin), each unless the scene has it already."""
    from mathutils import Vector
    for name, place, watts, size in LIGHTS:
        if scene.objects.get(name) is not None:
            continue
        data = bpy.data.lights.new(name, 'AREA')
        data.energy, data.size = watts, size
        light = bpy.data.objects.new(name, data)
        light.location = Vector((axes @ np.asarray(place)).tolist())
        # an area light shines along its -Z: turn -Z towards the head
        light.rotation_euler = (-light.location).to_track_quat('-Z', 'Y').to_euler()
        collection.objects.link(light)


def build_demo_head(context) -> tuple:
    """Add the head mesh (parented to an empty) to the scene; returns (mesh object, control)."""
    from .core.face.face_model import load_face_model
    model = load_face_model()
    axes = head_pose.axis_matrix(context.scene.maskcap.head_axes)
    quads = model.quads
    faces = [tuple(q[:3]) if q[3] == q[2] else tuple(q) for q in quads.tolist()]
    mesh = bpy.data.meshes.new(MESH_NAME)
    mesh.from_pydata(_to_blender(model.neutral, axes).tolist(), [], faces)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
    mesh.update()
    mesh.materials.append(skin_material())

    obj = bpy.data.objects.new(MESH_NAME, mesh)
    control = bpy.data.objects.new(CONTROL_NAME, None)
    control.empty_display_type = 'SPHERE'
    control.empty_display_size = 0.05
    collection = context.collection or context.scene.collection
    collection.objects.link(control)
    collection.objects.link(obj)
    obj.parent = control

    add_lights(context.scene, collection, axes)
    obj[DEMO_PROP] = [0.0] * model.num_identity  # the identity its vertices have now
    obj.shape_key_add(name="Basis", from_mix=False)
    for i, name in enumerate(core.FACS_NAMES):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.data.foreach_set("co", _to_blender(model.neutral + model.expression_deltas[i], axes).ravel())
        block.slider_min, block.slider_max = 0.0, 1.0
    return obj, control


def is_demo_head(obj) -> bool:
    return obj is not None and obj.type == 'MESH' and DEMO_PROP in obj


def apply_identity(scene, obj, identity) -> None:
    """Reshape a demo head (every shape key) to a face-model identity, e.g. the performer's as
    solved by the tracker, so that the render lines up with the footage."""
    from .core.face.face_model import load_face_model
    model = load_face_model()
    axes = head_pose.axis_matrix(scene.maskcap.head_axes)
    new = np.zeros(model.num_identity)
    given = np.asarray(identity, np.float64)[: model.num_identity]
    new[: len(given)] = given
    old = np.asarray(obj[DEMO_PROP], np.float64)
    if len(old) != model.num_identity or len(obj.data.vertices) != len(model.neutral):
        raise ValueError(f"'{obj.name}' was not built from this face model")
    delta = _to_blender(np.tensordot(new - old, model.identity_basis, axes=1), axes).astype(np.float32).ravel()
    co = np.empty(delta.size, np.float32)
    for block in obj.data.shape_keys.key_blocks:
        block.data.foreach_get("co", co)
        block.data.foreach_set("co", co + delta)
    obj.data.vertices.foreach_get("co", co)
    obj.data.vertices.foreach_set("co", co + delta)
    obj.data.update()
    obj[DEMO_PROP] = new.tolist()


class MASKCAP_OT_add_demo_head(bpy.types.Operator):
    """Add a head made from the face model, with the 46 FACS shape keys and a head control"""

    bl_idname = "maskcap.add_demo_head"
    bl_label = "Add demo head"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        try:
            obj, control = build_demo_head(context)
        except (OSError, RuntimeError, ValueError) as exc:
            self.report({'ERROR'}, f"maskcap: cannot build the demo head: {exc}")
            return {'CANCELLED'}
        s = context.scene.maskcap
        s.target, s.head_object, s.head_bone = obj, control, ""
        ensure_channels(s)
        retarget_ops.auto_map(context.scene)
        self.report({'INFO'}, f"maskcap: added '{obj.name}' with {len(core.FACS_NAMES)} shape keys, "
                              f"driven through '{control.name}'")
        return {'FINISHED'}


CLASSES = (MASKCAP_OT_add_demo_head,)
