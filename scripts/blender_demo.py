"""The main job's Blender part, headless: install the add-on zip into bpy (an isolated user folder),
add the demo head, bake a clip, match the camera, build the Fig. 5 compositor tree, render a few
frames, and write the .blend, the take and a contact sheet (footage above, composite below).

    .venv/bin/python scripts/blender_demo.py --zip dist/maskcap-0.1.0-linux-x64-blender4.2-5.0.zip \
        --clip out/demo_clip.mp4 --out out
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

RENDERS = 5           # frames rendered evenly across the take (the demo clip's middle one has the hand)
RENDER_SAMPLES = 32   # Cycles samples per frame (CPU, OpenImageDenoise when this build has it): a few seconds each


def isolate_blender_user(folder: Path) -> None:
    """Point bpy's user folders (config, scripts, extensions) into folder; before `import bpy`."""
    for name in ("RESOURCES", "CONFIG", "SCRIPTS", "EXTENSIONS", "DATAFILES"):
        os.environ[f"BLENDER_USER_{name}"] = str(folder / name.lower())


def footage_frames(source, indices: list[int]) -> list:
    """BGR frames at 0-based indices of a core FrameSource (video file or image folder)."""
    wanted, frames = set(indices), {}
    with source:
        for frame in source:
            if frame.index in wanted:
                frames[frame.index] = frame.image
            if len(frames) == len(wanted):
                break
    missing = wanted - set(frames)
    if missing:
        raise OSError(f"the footage ended before frame {min(missing)}")
    return [frames[i] for i in indices]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, required=True, help="the extension zip from build_addon.py")
    parser.add_argument("--clip", type=Path, required=True, help="the footage to bake (video file or image folder)")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    out = args.out.resolve()
    clip = args.clip.resolve()
    if not clip.exists():
        print(f"no clip at {clip}", file=sys.stderr)
        return 1
    isolate_blender_user(out / "blender_user")

    import bpy  # noqa: E402 (after the user folders are set)

    started = time.perf_counter()
    result = bpy.ops.extensions.package_install_files(filepath=str(args.zip.resolve()), repo="user_default",
                                                      enable_on_install=True)
    if result != {'FINISHED'}:
        print(f"installing {args.zip} failed: {result}", file=sys.stderr)
        return 1
    pkg = sys.modules["bl_ext.user_default.maskcap"]
    import importlib

    def engine(name: str):  # the add-on's vendored core, e.g. engine("io.files")
        return importlib.import_module(f"{pkg.__name__}.core.{name}")
    print(f"installed the add-on into {Path(pkg.__file__).parent} ({time.perf_counter() - started:.1f} s)")

    scene = bpy.context.scene
    for name in ("Cube", "Light"):  # the startup cube would enclose the head; the demo head brings its lights
        if bpy.data.objects.get(name) is not None:
            bpy.data.objects.remove(bpy.data.objects[name])
    blend = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # so that the masks go beside it ("//")
    bpy.ops.maskcap.add_demo_head()
    settings = scene.maskcap
    settings.source_type = 'FILE'
    settings.source_path = str(clip)
    settings.write_masks = True
    started = time.perf_counter()
    bpy.ops.maskcap.bake()
    take = pkg.bake.last_take()
    seconds = time.perf_counter() - started
    print(f"baked {len(take)} frames ({take.tracked} tracked) in {seconds:.1f} s, "
          f"{len(take) / seconds:.1f} fps (including the tracker's first-use compile)")
    files = engine("io.files")
    files.write_npz(out / "demo_take.npz", fps=take.fps, size=take.size, frame_index=take.frame_index,
                    time_s=take.time_s, ok=take.ok, confidence=take.confidence, blendshapes=take.blendshapes,
                    facs_names=list(pkg.core.FACS_NAMES), rotation=take.rotation,
                    translation_cm=take.translation_cm, focal_px=take.focal_px, landmarks=take.landmarks)

    bpy.ops.maskcap.camera_match()
    bpy.ops.maskcap.build_compositor()
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = RENDER_SAMPLES
    import _cycles
    scene.cycles.use_denoising = bool(getattr(_cycles, "with_openimagedenoise", False))
    if scene.cycles.use_denoising:
        scene.cycles.denoiser = 'OPENIMAGEDENOISE'
    first = settings.take_frame_start
    frames = [first + round(i * (len(take) - 1) / (RENDERS - 1)) for i in range(RENDERS)]
    composites = []
    import cv2

    for frame in frames:
        scene.frame_set(frame)
        scene.render.filepath = str(out / "demo_render" / f"frame_{frame:04d}.png")
        bpy.ops.render.render(write_still=True)
        composites.append(cv2.imread(scene.render.filepath))
    print(f"rendered frames {frames} into {out / 'demo_render'}")
    source = engine("capture.take").open_file_source(str(clip), fps=settings.source_fps)
    footage = footage_frames(source, [f - first for f in frames])
    # footage on the top row, the composites below
    sheet = engine("capture.preview").contact_sheet(footage + composites, columns=len(footage))
    files.write_image(out / "demo_contact_sheet.png", sheet)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    print(f"wrote {blend}, {out / 'demo_take.npz'} and {out / 'demo_contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
