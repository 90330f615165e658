"""The paper's Fig. 5 in Blender's compositor: the rendered face over the footage, only where
the segmentation mask says face, so that hands and hair in the footage stay in front.

out = mix(footage, render, factor = mask x render alpha). Blender 5.0 composites through
scene.compositing_node_group (a CompositorNodeTree group with an Image output); 4.2-4.5 through
scene.node_tree with use_nodes and a Composite node. Both are built here.
"""
import os
import re

import bpy


TREE_NAME = "maskcap_composite"


def _new(tree, *types):
    """The first node type this Blender knows (node names changed in 5.0)."""
    for t in types:
        try:
            return tree.nodes.new(t)
        except RuntimeError:
            continue
    raise RuntimeError(f"this Blender has none of the node types {types}")


def _socket(sockets, *names):
    """A socket by identifier or name, skipping hidden/unavailable ones."""
    for name in names:
        for s in sockets:
            if (s.identifier == name or s.name == name) and getattr(s, "enabled", True):
                return s
    raise KeyError(f"no socket {names} in {[s.identifier for s in sockets]}")


def _first_number(path: str) -> int | None:
    digits = re.findall(r"\d+", os.path.splitext(os.path.basename(path))[0])
    return int(digits[-1]) if digits else None


def _load_footage(path: str, frames: int, frame_start: int):
    """The footage as an Image (movie, or an image sequence from a folder) and its frame offset."""
    path = bpy.path.abspath(path)
    if os.path.isdir(path):
        from .core.io import sources
        files = sorted((f for f in os.listdir(path) if os.path.splitext(f)[1].lower() in sources.IMAGE_SUFFIXES),
                       key=lambda n: [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", n)])
        if not files:
            raise ValueError(f"{path} holds no images")
        image = bpy.data.images.load(os.path.join(path, files[0]), check_existing=True)
        image.source = 'SEQUENCE'
        first = _first_number(files[0])
        return image, (first - 1) if first is not None else 0
    if not os.path.isfile(path):
        raise ValueError(f"footage not found: {path}")
    image = bpy.data.images.load(path, check_existing=True)
    image.source = 'MOVIE'
    return image, 0


def _image_node(tree, image, frames: int, frame_start: int, offset: int):
    node = _new(tree, "CompositorNodeImage")
    node.image = image
    user = node.image_user if hasattr(node, "image_user") else node
    for attr, value in (("frame_duration", frames), ("frame_start", frame_start), ("frame_offset", offset),
                        ("use_auto_refresh", True), ("use_cyclic", False)):
        if hasattr(user, attr):
            setattr(user, attr, value)
    return node


def _fit_to_render(tree, output):
    """A Scale node that stretches an image to the render size (the footage and the masks match
    the render at any resolution percentage); returns its output."""
    scale = _new(tree, "CompositorNodeScale")
    if "Type" in scale.inputs:  # Blender 5.0: options are menu sockets
        scale.inputs["Type"].default_value = 'Render Size'
        scale.inputs["Frame Type"].default_value = 'Stretch'
    else:
        scale.space, scale.frame_method = 'RENDER_SIZE', 'STRETCH'
    tree.links.new(output, scale.inputs[0])
    return scale.outputs[0]


def _tree(scene):
    """An empty compositor tree for this Blender: the 5.0 group, or the 4.x scene tree."""
    if hasattr(scene, "compositing_node_group"):
        tree = bpy.data.node_groups.get(TREE_NAME)
        if tree is not None:
            bpy.data.node_groups.remove(tree)
        tree = bpy.data.node_groups.new(TREE_NAME, "CompositorNodeTree")
        tree.interface.new_socket("Image", in_out='OUTPUT', socket_type='NodeSocketColor')
        scene.compositing_node_group = tree
        return tree, True
    scene.use_nodes = True
    tree = scene.node_tree
    tree.nodes.clear()
    return tree, False


def build_tree(scene, footage: str, mask_dir: str, frames: int, frame_start: int):
    """Build the Fig. 5 tree for the scene; returns the node tree."""
    if not mask_dir or not os.path.isdir(mask_dir):
        raise ValueError("no mask sequence: bake the footage with 'Write masks' on first")
    from .core.capture import take
    first_mask = os.path.join(mask_dir, take.MASK_PATTERN.format(1))
    if not os.path.isfile(first_mask):
        raise ValueError(f"the mask sequence in {mask_dir} has no {os.path.basename(first_mask)}")
    footage_image, footage_offset = _load_footage(footage, frames, frame_start)
    mask_image = bpy.data.images.load(first_mask, check_existing=True)
    mask_image.source = 'SEQUENCE'
    mask_image.colorspace_settings.name = 'Non-Color'

    tree, is_group = _tree(scene)
    render = _new(tree, "CompositorNodeRLayers")
    render.scene = scene
    foot = _image_node(tree, footage_image, frames, frame_start, footage_offset)
    mask = _image_node(tree, mask_image, frames, frame_start, 0)
    new_nodes = bpy.app.version >= (5, 0, 0)  # 5.0 replaced the compositor's own Math and Mix
    both = _new(tree, "ShaderNodeMath" if new_nodes else "CompositorNodeMath")
    both.operation = 'MULTIPLY'
    mix = _new(tree, "ShaderNodeMix" if new_nodes else "CompositorNodeMixRGB")
    if hasattr(mix, "data_type"):
        mix.data_type = 'RGBA'
    links = tree.links
    links.new(_fit_to_render(tree, _socket(mask.outputs, "Image")), both.inputs[0])
    links.new(_socket(render.outputs, "Alpha"), both.inputs[1])
    links.new(both.outputs[0], _socket(mix.inputs, "Factor_Float", "Fac", "Factor"))
    links.new(_fit_to_render(tree, _socket(foot.outputs, "Image")), _socket(mix.inputs, "A_Color", "Image"))
    links.new(_socket(render.outputs, "Image"), _socket(mix.inputs, "B_Color", "Image_001"))
    result = _socket(mix.outputs, "Result_Color", "Image")
    if is_group:
        out = _new(tree, "NodeGroupOutput")
        links.new(result, out.inputs[0])
    else:
        out = _new(tree, "CompositorNodeComposite")
        links.new(result, out.inputs[0])
    viewer = _new(tree, "CompositorNodeViewer")
    links.new(result, viewer.inputs[0])
    for x, node in enumerate((render, foot, mask)):
        node.location = (-500, 300 - 300 * x)
    both.location, mix.location, out.location, viewer.location = (-200, -100), (0, 100), (250, 150), (250, -50)

    scene.render.film_transparent = True  # the render's alpha says where the head is
    scene.render.use_compositing = True
    scene.view_settings.view_transform = 'Standard'  # the footage comes out as it was shot
    return tree


def tree_is_valid(tree) -> bool:
    """Every link valid and the output fed (for tests and the report)."""
    outputs = [n for n in tree.nodes if n.bl_idname in ("NodeGroupOutput", "CompositorNodeComposite")]
    return bool(outputs) and all(link.is_valid for link in tree.links) and outputs[0].inputs[0].is_linked


class MASKCAP_OT_build_compositor(bpy.types.Operator):
    """Composite the rendered face over the footage only where the mask says face (paper Fig. 5)"""

    bl_idname = "maskcap.build_compositor"
    bl_label = "Build compositor tree"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        s = context.scene.maskcap
        if s.take_frames <= 0:
            self.report({'ERROR'}, "maskcap: bake the footage first (the tree needs its masks)")
            return {'CANCELLED'}
        try:
            tree = build_tree(context.scene, s.source_path, bpy.path.abspath(s.take_mask_dir), s.take_frames,
                              s.take_frame_start)
        except (ValueError, RuntimeError, KeyError, OSError) as exc:
            self.report({'ERROR'}, f"maskcap: {exc}")
            return {'CANCELLED'}
        if not tree_is_valid(tree):
            self.report({'ERROR'}, "maskcap: the compositor tree has invalid links")
            return {'CANCELLED'}
        self.report({'INFO'}, f"maskcap: compositor tree '{tree.name}' built")
        return {'FINISHED'}


CLASSES = (MASKCAP_OT_build_compositor,)
