"""The sidebar panels in the 3D viewport (tab "maskcap")."""
import bpy

from . import drive, preferences
from . import core


class MASKCAP_UL_channels(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        keys = [k.strip() for k in item.shape_keys.split(",") if k.strip()]
        target = context.scene.maskcap.target
        present = target.data.shape_keys.key_blocks.keys() if target and target.data.shape_keys else []
        ok = bool(keys) and all(k in present for k in keys)
        row.label(text=item.facs_name, icon='CHECKMARK' if ok else 'ERROR')
        row.prop(item, "shape_keys", text="")
        row.prop(item, "gain", text="")


class _Panel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "maskcap"


class MASKCAP_PT_main(_Panel, bpy.types.Panel):
    bl_label = "maskcap"

    def draw(self, context):
        s = context.scene.maskcap
        layout = self.layout
        layout.operator("maskcap.add_demo_head", icon='USER')
        col = layout.column(align=True)
        col.prop(s, "source_type", expand=True)
        if s.source_type == 'CAMERA':
            col.prop(s, "camera_index")
        else:
            col.prop(s, "source_path", text="")
            col.prop(s, "source_fps")
        col = layout.column(align=True)
        col.prop(s, "target")
        col.prop(s, "head_object")
        if s.head_object and s.head_object.type == 'ARMATURE':
            col.prop_search(s, "head_bone", s.head_object.data, "bones")
        col.prop(s, "focal_mm")
        if s.last_report:
            layout.label(text=s.last_report, icon='INFO')


class MASKCAP_PT_live(_Panel, bpy.types.Panel):
    bl_label = "Live"
    bl_parent_id = "MASKCAP_PT_main"

    def draw(self, context):
        s = context.scene.maskcap
        layout = self.layout
        row = layout.row(align=True)
        if s.live_running:
            row.operator("maskcap.live_stop", icon='PAUSE')
            row.operator("maskcap.record_toggle", text="Stop recording" if s.recording else "Record",
                         icon='REC', depress=s.recording)
        else:
            row.operator("maskcap.live_start", icon='PLAY')
        row = layout.row(align=True)
        row.operator("maskcap.calibrate_neutral", text="Calibrating..." if s.calibrating else "Calibrate neutral")
        row.prop(s, "calibration_seconds")
        layout.operator("maskcap.clear_neutral")
        layout.operator("maskcap.show_preview", icon='IMAGE_DATA')


class MASKCAP_PT_bake(_Panel, bpy.types.Panel):
    bl_label = "Bake"
    bl_parent_id = "MASKCAP_PT_main"

    def draw(self, context):
        s = context.scene.maskcap
        layout = self.layout
        layout.operator("maskcap.bake", icon='RENDER_ANIMATION')
        layout.prop(s, "keep_partial")
        layout.prop(s, "write_masks")
        if s.write_masks:
            layout.prop(s, "mask_dir")
        row = layout.row(align=True)
        row.operator("maskcap.camera_match", icon='CAMERA_DATA')
        row.operator("maskcap.build_compositor", icon='NODE_COMPOSITING')


class MASKCAP_PT_device(_Panel, bpy.types.Panel):
    bl_label = "Compute device"
    bl_parent_id = "MASKCAP_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        prefs = preferences.preferences(context)
        if prefs is not None:  # the same settings as in the add-on's preferences
            layout.row().prop(prefs, "compute_device", expand=True)
            layout.prop(prefs, "threads")
        preferences.draw_status(layout)


class MASKCAP_PT_anonymize(_Panel, bpy.types.Panel):
    bl_label = "Anonymise"
    bl_parent_id = "MASKCAP_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        layout.operator("maskcap.anonymize_clip", text="Anonymise footage", icon='HIDE_ON')
        op = layout.operator("maskcap.anonymize_clip", text="Anonymise active movie strip", icon='SEQUENCE')
        op.use_strip = True


class MASKCAP_PT_filter(_Panel, bpy.types.Panel):
    bl_label = "Filter (One Euro)"
    bl_parent_id = "MASKCAP_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        s = context.scene.maskcap
        row = self.layout.row()
        row.prop(s, "filter_live")
        row.prop(s, "filter_bake")
        col = self.layout.column(align=True)
        col.prop(s, "filter_min_cutoff")
        col.prop(s, "filter_beta")
        col.prop(s, "filter_d_cutoff")


class MASKCAP_PT_head(_Panel, bpy.types.Panel):
    bl_label = "Head"
    bl_parent_id = "MASKCAP_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        s = context.scene.maskcap
        row = self.layout.row()
        row.prop(s, "head_rotation")
        row.prop(s, "head_translation")
        self.layout.prop(s, "head_axes")
        self.layout.prop(s, "head_translation_scale")


class MASKCAP_PT_mapping(_Panel, bpy.types.Panel):
    bl_label = "Retargeting"
    bl_parent_id = "MASKCAP_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        s = context.scene.maskcap
        layout = self.layout
        row = layout.row(align=True)
        row.operator("maskcap.auto_map", icon='LINKED')
        row.operator("maskcap.report_missing", text="", icon='QUESTION')
        row = layout.row(align=True)
        row.prop(s, "preset_name", text="")
        row.operator("maskcap.preset_save", text="", icon='FILE_TICK')
        row.operator("maskcap.preset_load", text="", icon='FILE_FOLDER')
        if len(s.channels) != core.NUM_FACS:
            layout.label(text="No mapping yet: choose a target and press Auto-map", icon='INFO')
            return
        missing = drive.missing_keys(context.scene) if s.target is not None else []
        if missing:
            box = layout.box()
            box.label(text=f"{len(missing)} channels drive no shape key:", icon='ERROR')
            for i in range(0, len(missing), 3):
                box.label(text=", ".join(missing[i:i + 3]))
        layout.template_list("MASKCAP_UL_channels", "", s, "channels", s, "channel_index", rows=6)
        if 0 <= s.channel_index < len(s.channels):
            ch = s.channels[s.channel_index]
            col = layout.column(align=True)
            col.label(text=ch.facs_name)
            col.prop(ch, "shape_keys")
            row = col.row(align=True)
            row.prop(ch, "gain")
            row.prop(ch, "offset")
            row = col.row(align=True)
            row.prop(ch, "clamp_min")
            row.prop(ch, "clamp_max")
            col.prop(ch, "neutral")


CLASSES = (MASKCAP_UL_channels, MASKCAP_PT_main, MASKCAP_PT_live, MASKCAP_PT_bake, MASKCAP_PT_device,
           MASKCAP_PT_anonymize, MASKCAP_PT_filter,
           MASKCAP_PT_head, MASKCAP_PT_mapping)
