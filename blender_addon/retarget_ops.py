"""Retargeting operators: fill the mapping from the rig's key names, list what is missing,
save and load presets (JSON in the extension's user folder)."""
import os

import bpy

from . import drive
from . import core
from .core.capture import retarget
from .properties import channel_params, ensure_channels


def presets_dir(create: bool = False) -> str:
    """<extension user path>/presets, never inside the add-on's own folder (run from a source
    tree as a legacy add-on: Blender's user config folder, maskcap_presets)."""
    try:
        base = bpy.utils.extension_path_user(__package__, create=create)
    except ValueError:  # not installed as an extension
        base = bpy.utils.user_resource('CONFIG', path="maskcap", create=create)
    path = os.path.join(base, "presets")
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def preset_names() -> list[str]:
    try:
        folder = presets_dir()
    except (ValueError, OSError):
        return []
    if not os.path.isdir(folder):
        return []
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".json"))


def _safe_name(name: str) -> str:
    cleaned = "".join(c for c in name.strip() if c.isalnum() or c in "-_ .").strip(" .")
    if not cleaned:
        raise ValueError("give the preset a name (letters, digits, - _ . and spaces)")
    return cleaned


def auto_map(scene) -> list[str]:
    """Fill every channel's keys from the target's shape keys; returns the missing channels."""
    s = scene.maskcap
    ensure_channels(s)
    rig = drive.resolve_rig(scene, need_face=True)
    names = rig.key.key_blocks.keys()[1:]  # not the basis
    mapping = retarget.auto_map(names)
    for channel in s.channels:
        channel.shape_keys = ", ".join(mapping[channel.facs_name])
    return retarget.missing_channels(mapping)


def _missing_text(missing: list[str]) -> str:
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return f"{len(missing)} of {core.NUM_FACS} channels have no shape key on the rig: {shown}"


class MASKCAP_OT_auto_map(bpy.types.Operator):
    """Map the 46 FACS channels to the target's shape keys by name (FACS, ARKit or ICT style)"""

    bl_idname = "maskcap.auto_map"
    bl_label = "Auto-map channels"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        try:
            missing = auto_map(context.scene)
        except drive.TargetError as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        if missing:
            self.report({'WARNING'}, f"maskcap: {_missing_text(missing)}")
        else:
            self.report({'INFO'}, f"maskcap: all {core.NUM_FACS} channels mapped")
        return {'FINISHED'}


class MASKCAP_OT_report_missing(bpy.types.Operator):
    """Report the channels that drive no shape key of the target"""

    bl_idname = "maskcap.report_missing"
    bl_label = "Report missing channels"

    def execute(self, context):
        missing = drive.missing_keys(context.scene)
        if missing:
            self.report({'WARNING'}, f"maskcap: {_missing_text(missing)}")
        else:
            self.report({'INFO'}, "maskcap: every channel drives a shape key")
        return {'FINISHED'}


class MASKCAP_OT_preset_save(bpy.types.Operator):
    """Save the channel mapping and head settings as a preset"""

    bl_idname = "maskcap.preset_save"
    bl_label = "Save preset"

    name: bpy.props.StringProperty(name="Name", default="")

    def execute(self, context):
        s = context.scene.maskcap
        try:
            name = _safe_name(self.name or s.preset_name)
            path = os.path.join(presets_dir(create=True), name + ".json")
            head = {"axes": s.head_axes, "translation_scale": s.head_translation_scale,
                    "rotation": s.head_rotation, "translation": s.head_translation}
            from .core.io.files import write_text
            write_text(path, retarget.preset_json(channel_params(s), head))
        except (ValueError, OSError) as exc:
            self.report({'ERROR'}, f"maskcap: cannot save the preset: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"maskcap: preset saved to {path}")
        return {'FINISHED'}


class MASKCAP_OT_preset_load(bpy.types.Operator):
    """Load a saved preset (mapping, gains, offsets, clamps, head settings)"""

    bl_idname = "maskcap.preset_load"
    bl_label = "Load preset"
    bl_options = {'REGISTER', 'UNDO'}

    name: bpy.props.StringProperty(name="Name", default="")

    def execute(self, context):
        s = context.scene.maskcap
        try:
            name = _safe_name(self.name or s.preset_name)
            path = os.path.join(presets_dir(), name + ".json")
            if not os.path.isfile(path):
                known = ", ".join(preset_names()) or "none saved yet"
                raise ValueError(f"no preset named '{name}' (presets: {known})")
            with open(path, encoding="utf-8") as f:
                channels, head = retarget.parse_preset(f.read())
        except (ValueError, OSError) as exc:
            self.report({'ERROR'}, f"maskcap: cannot load the preset: {exc}")
            return {'CANCELLED'}
        ensure_channels(s)
        for channel in s.channels:
            p = channels.get(channel.facs_name)
            if p is not None:
                channel.shape_keys = ", ".join(p.keys)
                channel.gain, channel.offset = p.gain, p.offset
                channel.clamp_min, channel.clamp_max = p.clamp_min, p.clamp_max
        if "axes" in head:
            s.head_axes = str(head["axes"])
        for key, prop, kind in (("translation_scale", "head_translation_scale", float),
                                ("rotation", "head_rotation", bool), ("translation", "head_translation", bool)):
            if key in head:
                setattr(s, prop, kind(head[key]))
        missing = drive.missing_keys(context.scene) if s.target is not None else []
        if missing:
            self.report({'WARNING'}, f"maskcap: preset '{name}' loaded; {_missing_text(missing)}")
        else:
            self.report({'INFO'}, f"maskcap: preset '{name}' loaded")
        return {'FINISHED'}


CLASSES = (MASKCAP_OT_auto_map, MASKCAP_OT_report_missing, MASKCAP_OT_preset_save, MASKCAP_OT_preset_load)
