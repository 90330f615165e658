"""Scene settings (scene.maskcap): source, target, head, mapping, filter, bake and live state."""
import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from . import core
from .core.capture import filters, head_pose, retarget


def _is_mesh(_self, obj):
    return obj.type == 'MESH'


class MaskcapChannel(bpy.types.PropertyGroup):
    """One FACS channel: the shape keys it drives and how its value is mapped."""

    facs_name: StringProperty(name="Channel", description="FACS channel name")
    shape_keys: StringProperty(name="Shape keys",
                               description="Shape key(s) this channel drives, comma-separated; empty: not driven")
    gain: FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=3.0)
    offset: FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0)
    clamp_min: FloatProperty(name="Min", default=0.0, soft_min=-1.0, soft_max=1.0)
    clamp_max: FloatProperty(name="Max", default=1.0, soft_min=0.0, soft_max=2.0)
    neutral: FloatProperty(name="Neutral", default=0.0, min=0.0, max=1.0,
                           description="The performer's rest value, subtracted (neutral calibration)")


class MaskcapSettings(bpy.types.PropertyGroup):
    source_type: EnumProperty(name="Source", items=(
        ('FILE', "Footage", "A video file or a folder of images"),
        ('CAMERA', "Camera", "A live camera by index")), default='FILE')
    source_path: StringProperty(name="Footage", subtype='FILE_PATH',
                                description="Video file (any format OpenCV reads) or a folder of images")
    source_fps: FloatProperty(name="Image fps", default=30.0, min=1.0, max=240.0,
                              description="Frame rate of an image sequence")
    camera_index: IntProperty(name="Camera", default=0, min=0, max=16)

    target: PointerProperty(name="Face mesh", type=bpy.types.Object, poll=_is_mesh,
                            description="Mesh whose shape keys the face drives")
    head_object: PointerProperty(name="Head", type=bpy.types.Object,
                                 description="Object (or armature) that the head pose drives")
    head_bone: StringProperty(name="Bone", description="Bone of the armature that the head pose drives")
    head_rotation: BoolProperty(name="Rotation", default=True)
    head_translation: BoolProperty(name="Location", default=True)
    head_axes: StringProperty(name="Axes", default=head_pose.DEFAULT_AXES,
                              description="Blender axis of the tracked x (subject's left), y (up) and z "
                                          "(out of the face), e.g. X,Z,-Y")
    head_translation_scale: FloatProperty(name="Location scale", default=1.0, min=0.0, soft_max=10.0)

    channels: CollectionProperty(type=MaskcapChannel)
    channel_index: IntProperty(default=0)
    show_channels: BoolProperty(name="Show channels", default=False)
    preset_name: StringProperty(name="Preset", default="my_rig")

    filter_live: BoolProperty(name="Filter live", default=True)
    filter_bake: BoolProperty(name="Filter bake", default=False)
    filter_min_cutoff: FloatProperty(name="Min cutoff", default=1.0, min=0.001, soft_max=10.0, unit='NONE',
                                     description="One Euro: cutoff at rest in Hz (lower: smoother)")
    filter_beta: FloatProperty(name="Beta", default=0.3, min=0.0, soft_max=10.0,
                               description="One Euro: how fast the cutoff rises with speed (higher: less lag)")
    filter_d_cutoff: FloatProperty(name="Speed cutoff", default=1.0, min=0.001, soft_max=10.0)

    focal_mm: FloatProperty(name="Focal (mm)", default=50.0, min=5.0, max=300.0,
                            description="35 mm-equivalent focal length the tracker starts from")
    keep_partial: BoolProperty(name="Keep partial take on cancel", default=True)
    write_masks: BoolProperty(name="Write masks", default=True,
                              description="Write the face masks as PNGs for compositing")
    mask_dir: StringProperty(name="Mask folder", default="//maskcap_masks/", subtype='DIR_PATH')
    calibration_seconds: FloatProperty(name="Seconds", default=3.0, min=0.5, max=30.0)

    live_running: BoolProperty(default=False, options={'SKIP_SAVE'})
    recording: BoolProperty(default=False, options={'SKIP_SAVE'})
    calibrating: BoolProperty(default=False, options={'SKIP_SAVE'})
    last_report: StringProperty(default="", options={'SKIP_SAVE'})
    take_focal_px: FloatProperty(default=0.0)
    take_width: IntProperty(default=0)
    take_height: IntProperty(default=0)
    take_reference: bpy.props.FloatVectorProperty(size=3, default=(0.0, 0.0, 60.0))
    take_mask_dir: StringProperty(default="", subtype='DIR_PATH')
    take_frame_start: IntProperty(default=1)
    take_frames: IntProperty(default=0)


def ensure_channels(settings) -> None:
    """The 46 channel items in FACS order (created once per scene)."""
    names = core.FACS_NAMES
    if [c.facs_name for c in settings.channels] == list(names):
        return
    settings.channels.clear()
    for name in names:
        settings.channels.add().facs_name = name


def channel_params(settings):
    """The channels as core.capture.retarget.ChannelParams, FACS order."""
    ensure_channels(settings)
    return [retarget.ChannelParams(keys=retarget.split_keys(ch.shape_keys), gain=ch.gain, offset=ch.offset,
                                     clamp_min=ch.clamp_min, clamp_max=ch.clamp_max, neutral=ch.neutral)
            for ch in settings.channels]


def one_euro_params(settings):
    return filters.OneEuroParams(settings.filter_min_cutoff, settings.filter_beta, settings.filter_d_cutoff)


CLASSES = (MaskcapChannel, MaskcapSettings)


def register_properties():
    bpy.types.Scene.maskcap = PointerProperty(type=MaskcapSettings)


def unregister_properties():
    del bpy.types.Scene.maskcap
