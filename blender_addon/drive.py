"""Driving the rig: resolve the target, set shape keys and the head, write takes as actions.

Everything here runs on Blender's main thread. A take is written into new actions (one for the
shape keys, one for the head) that are assigned only once complete, so the rig never holds a
half-written action.
"""
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Euler, Matrix, Quaternion, Vector

from .core.capture import head_pose, retarget
from .properties import channel_params

REST_PROP = "maskcap_rest"  # custom property: the head's rest location (3) + rotation quaternion (4)


class TargetError(ValueError):
    """The target or head cannot be driven; the message is for the user."""


def _alive(obj, scene):
    """obj if it still exists and is in the scene, else None (a deleted object)."""
    if obj is None:
        return None
    try:
        name = obj.name
    except ReferenceError:
        return None
    return obj if scene.objects.get(name) is obj else None


@dataclass
class Rig:
    """The resolved target: mesh shape keys and the head (object or pose bone)."""

    mesh: object
    key: object                           # bpy.types.Key
    keys_per_channel: list
    head: object | None                   # Object or PoseBone
    head_owner: object | None             # the Object that owns the head's animation
    bone_basis: Matrix | None             # armature-space rest orientation of a head bone


def resolve_rig(scene, need_face=True) -> Rig:
    """The rig named by scene.maskcap; TargetError saying what is missing."""
    s = scene.maskcap
    mesh = _alive(s.target, scene)
    if s.target is not None and mesh is None:
        raise TargetError("the face mesh was deleted: choose another target")
    key = None
    if need_face:
        if mesh is None:
            raise TargetError("choose a face mesh with shape keys (or use 'Add demo head')")
        key = mesh.data.shape_keys
        if key is None or len(key.key_blocks) < 2:
            raise TargetError(f"'{mesh.name}' has no shape keys to drive: add shape keys, or use 'Add demo head'")
    params = channel_params(s)
    keys_per_channel = [p.keys for p in params]
    if key is not None:
        present = set(key.key_blocks.keys())
        keys_per_channel = [tuple(k for k in ks if k in present) for ks in keys_per_channel]
    head_obj = _alive(s.head_object, scene)
    if s.head_object is not None and head_obj is None:
        raise TargetError("the head object was deleted: choose another head")
    head, basis = head_obj, None
    if head_obj is not None and head_obj.type == 'ARMATURE' and s.head_bone:
        head = head_obj.pose.bones.get(s.head_bone)
        if head is None:
            raise TargetError(f"armature '{head_obj.name}' has no bone '{s.head_bone}'")
        basis = head.bone.matrix_local.to_3x3().normalized()
    return Rig(mesh, key, keys_per_channel, head, head_obj, basis)


def missing_keys(scene) -> list[str]:
    """FACS channels that drive no existing shape key of the target."""
    s = scene.maskcap
    mesh = _alive(s.target, scene)
    names = mesh.data.shape_keys.key_blocks.keys() if mesh is not None and mesh.data.shape_keys else []
    mapping = {p_name: p.keys for p_name, p in zip((c.facs_name for c in s.channels), channel_params(s))}
    return retarget.missing_channels(mapping, key_names=names)


# ---------------------------------------------------------------- head pose


def head_rest(rig: Rig) -> tuple[np.ndarray, Quaternion]:
    """The head's rest location and rotation, remembered on the object the first time it is driven."""
    if rig.bone_basis is not None:
        return np.zeros(3), Quaternion()
    obj = rig.head
    if REST_PROP not in obj:
        q = obj.matrix_basis.to_quaternion()
        obj[REST_PROP] = [*obj.location, *q]
    rest = list(obj[REST_PROP])
    return np.array(rest[:3]), Quaternion(rest[3:7])


def head_local(rig: Rig, rotation_world: np.ndarray, move_m: np.ndarray, rest) -> tuple[np.ndarray, Quaternion]:
    """Location and rotation in the head's own channels (object, or pose bone's rest frame)."""
    rest_loc, rest_rot = rest
    q = Matrix(rotation_world.tolist()).to_quaternion()
    if rig.bone_basis is not None:
        b = rig.bone_basis
        local = (b.transposed() @ Matrix(rotation_world.tolist()) @ b).to_quaternion()
        return np.array(b.transposed() @ Vector(tuple(move_m))), local
    return rest_loc + move_m, q @ rest_rot


def head_channels(rig: Rig):
    """(data path prefix, rotation channel name, rotation size) for the head's animation."""
    head = rig.head
    prefix = f'pose.bones["{head.name}"].' if rig.bone_basis is not None else ""
    mode = head.rotation_mode
    if mode == 'QUATERNION':
        return prefix, "rotation_quaternion", 4
    if mode == 'AXIS_ANGLE':
        return prefix, "rotation_axis_angle", 4
    return prefix, "rotation_euler", 3


def rotation_values(rig: Rig, q: Quaternion, previous=None) -> tuple:
    """q in the head's rotation mode; eulers stay continuous with `previous` (no 360° jumps)."""
    mode = rig.head.rotation_mode
    if mode == 'QUATERNION':
        return tuple(q)
    if mode == 'AXIS_ANGLE':
        axis, angle = q.to_axis_angle()
        return (angle, *axis)
    if previous is not None:
        return tuple(q.to_euler(mode, Euler(previous, mode)))
    return tuple(q.to_euler(mode))


def pose_from_tracking(scene, rotation_cam, translation_cm, reference_cm):
    """Blender-world (rotation, move in m) of a tracked head pose, per the scene's head settings."""
    s = scene.maskcap
    axes = head_pose.axis_matrix(s.head_axes)
    return head_pose.head_pose_blender(rotation_cam, translation_cm, reference_cm, axes, s.head_translation_scale)


# ---------------------------------------------------------------- live values


def apply_frame(scene, rig: Rig, values: np.ndarray, rotation_cam, translation_cm, reference_cm) -> None:
    """Set the shape keys to mapped values (46,) and the head to a tracked pose, now."""
    s = scene.maskcap
    if rig.key is not None:
        blocks = rig.key.key_blocks
        for key, v in retarget.key_values(rig.keys_per_channel, values).items():
            blocks[key].value = float(v)
    if rig.head is not None and rotation_cam is not None:
        rot, move = pose_from_tracking(scene, rotation_cam, translation_cm, reference_cm)
        loc, q = head_local(rig, rot, move, head_rest(rig))
        if s.head_translation:
            rig.head.location = tuple(loc)
        if s.head_rotation:
            _, name, size = head_channels(rig)
            previous = tuple(rig.head.rotation_euler) if size == 3 else None
            setattr(rig.head, name, rotation_values(rig, q, previous))


# ---------------------------------------------------------------- takes as actions


def _new_action(name: str, id_type: str):
    """A new action and a function that adds an F-curve to it (slotted actions in 4.4+)."""
    action = bpy.data.actions.new(name)
    if hasattr(action, "slots") and hasattr(action, "layers"):
        slot = action.slots.new(id_type=id_type, name=name)
        bag = action.layers.new("maskcap").strips.new(type='KEYFRAME').channelbag(slot, ensure=True)
        return action, slot, lambda path, index=0: bag.fcurves.new(path, index=index)
    action.id_root = id_type
    return action, None, lambda path, index=0: action.fcurves.new(path, index=index)


def _fill(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    fcurve.keyframe_points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2], co[1::2] = frames, values
    fcurve.keyframe_points.foreach_set("co", co)
    fcurve.update()


def assign_action(id_data, action, slot) -> None:
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action = action
    if slot is not None and hasattr(ad, "action_slot"):
        ad.action_slot = slot


@dataclass
class WrittenTake:
    face_action: object | None
    head_action: object | None
    keys: int
    head_keys: int


def write_take(scene, rig: Rig, name: str, frames: np.ndarray, values: np.ndarray, rotations_cam=None,
               translations_cm=None, reference_cm=None) -> WrittenTake:
    """Keyframes for every row: values (N, 46) on the mapped shape keys, and the head from camera
    rotations (N, 3, 3) and translations (N, 3) relative to reference_cm. Builds new actions and
    assigns them when complete."""
    s = scene.maskcap
    frames = np.asarray(frames, np.float64)
    face_action = head_action = None
    keys = head_keys = 0
    if rig.key is not None and len(frames):
        action, slot, new_curve = _new_action(f"{name}_face", 'KEY')
        for key, v in retarget.key_values(rig.keys_per_channel, values).items():
            _fill(new_curve(f'key_blocks["{key}"].value'), frames, v)
            keys += 1
        face_action = (action, slot)
    if rig.head is not None and rotations_cam is not None and len(frames) and (s.head_rotation or s.head_translation):
        action, slot, new_curve = _new_action(f"{name}_head", 'OBJECT')
        rest = head_rest(rig)
        prefix, rot_name, rot_size = head_channels(rig)
        locs = np.zeros((len(frames), 3))
        rots = np.zeros((len(frames), rot_size))
        previous = None
        for i, (r, t) in enumerate(zip(rotations_cam, translations_cm)):
            rot, move = pose_from_tracking(scene, r, t, reference_cm)
            loc, q = head_local(rig, rot, move, rest)
            locs[i] = loc
            rots[i] = rotation_values(rig, q, previous)
            previous = rots[i] if rot_size == 3 else None
        if s.head_translation:
            for axis in range(3):
                _fill(new_curve(prefix + "location", axis), frames, locs[:, axis])
                head_keys += 1
        if s.head_rotation:
            for axis in range(rot_size):
                _fill(new_curve(prefix + rot_name, axis), frames, rots[:, axis])
                head_keys += 1
        head_action = (action, slot)
    if face_action is not None:
        assign_action(rig.key, *face_action)
    if head_action is not None:
        assign_action(rig.head_owner, *head_action)
    return WrittenTake(face_action and face_action[0], head_action and head_action[0], keys, head_keys)
