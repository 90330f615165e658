"""Camera match: a Blender camera with the solved focal length and the footage's size, placed so
that the head at rest sits where the tracker saw it in the reference frame of the take."""
import bpy
from mathutils import Matrix, Vector

from . import demo_head, drive
from .core.capture import head_pose
from .core.face import camera

CAMERA_NAME = "maskcap_camera"


def match_camera(scene):
    """Create or update the camera; returns it. ValueError when no take has been baked."""
    s = scene.maskcap
    if s.take_focal_px <= 0 or s.take_width <= 0:
        raise ValueError("bake the footage first: the camera needs the solved focal length and the footage size")
    rig = drive.resolve_rig(scene, need_face=False)
    axes = head_pose.axis_matrix(s.head_axes)
    if rig.head is None:
        head_world = Vector((0.0, 0.0, 0.0))
    elif rig.bone_basis is not None:
        head_world = rig.head_owner.matrix_world @ rig.head.bone.head_local
    else:
        rest, _ = drive.head_rest(rig)
        parent = rig.head.parent.matrix_world if rig.head.parent else Matrix.Identity(4)
        head_world = parent @ Vector(tuple(rest))
    offset = head_pose.camera_offset_blender(tuple(s.take_reference), axes)
    rotation = head_pose.camera_rotation_blender(axes)

    data = bpy.data.cameras.get(CAMERA_NAME) or bpy.data.cameras.new(CAMERA_NAME)
    data.sensor_fit = 'HORIZONTAL'
    data.sensor_width = camera.FULL_FRAME_WIDTH_MM
    data.lens = camera.mm_from_focal(s.take_focal_px, s.take_width)
    data.shift_x = data.shift_y = 0.0
    data.clip_start, data.clip_end = 0.01, 100.0
    obj = bpy.data.objects.get(CAMERA_NAME)
    if obj is None:
        obj = bpy.data.objects.new(CAMERA_NAME, data)
        scene.collection.objects.link(obj)
    obj.matrix_world = Matrix.Translation(head_world + Vector(tuple(offset))) @ Matrix(rotation.tolist()).to_4x4()
    scene.camera = obj
    scene.render.resolution_x, scene.render.resolution_y = s.take_width, s.take_height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return obj


def show_footage_behind(scene, cam_obj) -> None:
    """The footage as the camera's viewport background, so the match can be checked by eye."""
    path = bpy.path.abspath(scene.maskcap.source_path)
    import os
    if not os.path.isfile(path):
        return  # image folders: the compositor shows them; the viewport background is optional
    clip = bpy.data.movieclips.load(path, check_existing=True)
    clip.frame_start = scene.maskcap.take_frame_start
    cam = cam_obj.data
    cam.show_background_images = True
    bg = next((b for b in cam.background_images if b.source == 'MOVIE_CLIP'), None) or cam.background_images.new()
    bg.source, bg.clip, bg.alpha = 'MOVIE_CLIP', clip, 0.6


class MASKCAP_OT_camera_match(bpy.types.Operator):
    """Add a camera with the solved focal length and footage size, lined up with the tracked head"""

    bl_idname = "maskcap.camera_match"
    bl_label = "Match camera"
    bl_options = {'REGISTER', 'UNDO'}

    fit_identity: bpy.props.BoolProperty(
        name="Fit demo head", default=True,
        description="Reshape the demo head to the performer's face as solved by the bake")

    def execute(self, context):
        scene = context.scene
        try:
            obj = match_camera(scene)
            target = scene.maskcap.target
            if self.fit_identity and demo_head.is_demo_head(target) and "maskcap_identity" in scene:
                demo_head.apply_identity(scene, target, list(scene["maskcap_identity"]))
        except (ValueError, drive.TargetError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        try:
            show_footage_behind(scene, obj)
        except (RuntimeError, OSError) as exc:
            self.report({'WARNING'}, f"maskcap: the footage could not be shown behind the camera: {exc}")
        self.report({'INFO'}, f"maskcap: camera '{obj.name}' at {obj.data.lens:.1f} mm "
                              f"({context.scene.render.resolution_x}x{context.scene.render.resolution_y})")
        return {'FINISHED'}


CLASSES = (MASKCAP_OT_camera_match,)
