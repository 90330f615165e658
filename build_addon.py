"""Build maskcap's Blender extension zips (Blender 4.2 and newer) into dist/, one per platform.

Each zip holds blender_manifest.toml, the add-on (blender_addon/ as the package root), core/
vendored inside it, the models, the licence and the run-time dependencies as wheels for that
platform and Blender's Python 3.11. numpy is not bundled: Blender ships it (bpy 5.0.1 requires
numpy>=1.26,<2, the same 1.26 that maskcap pins). Wheels are downloaded once with pip into
build/wheels/ and reused, so rebuilds are offline. Standard library only, plus pip for the wheels.

    python build_addon.py                        # every platform, CPU ONNX Runtime
    python build_addon.py --platform linux-x64   # what the tests build
    python build_addon.py --onnxruntime-gpu      # a separate GPU variant (Linux and Windows x64)

Blender's manifest format: https://docs.blender.org/manual/en/latest/advanced/extensions/
getting_started.html ("blender_manifest.toml"); wheels: .../extensions/python_wheels.html.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_ID = "maskcap"
VERSION = "0.1.0"
PYTHON_VERSION = "3.11"  # Blender 4.2 to 5.0 ship CPython 3.11

# Run-time packages taken from requirements.txt (numpy excluded: Blender ships it), plus the
# packages they cannot import without (numba needs llvmlite; its pin is in constraints.txt).
NOT_BUNDLED = {"numpy"}
REQUIRED_BY_RUNTIME = ("llvmlite",)

ZIP_EXCLUDE = re.compile(r"(__pycache__|\.pyc$|\.pyo$|^CONTRACT\.md$|^README_PACKAGING\.md$)")


@dataclass(frozen=True)
class Platform:
    """A Blender platform name and the wheel platform tags pip may pick for it."""

    name: str
    wheel_tags: tuple[str, ...]


def _manylinux(arch: str) -> tuple[str, ...]:
    """Linux wheel tags from glibc 2.28 (what Blender 4.2+ needs) down to manylinux2014 (2.17)."""
    return tuple(f"manylinux_2_{minor}_{arch}" for minor in range(28, 16, -1)) + (f"manylinux2014_{arch}",)


def _macos(arch: str) -> tuple[str, ...]:
    """macOS wheel tags, oldest release first so that the most widely usable wheel wins (pip does
    not widen an explicit --platform by itself)."""
    releases = [(10, minor) for minor in range(9, 16)] + [(major, 0) for major in range(11, 15)]
    return tuple(f"macosx_{a}_{b}_{kind}" for a, b in releases for kind in (arch, "universal2"))


PLATFORMS = {
    p.name: p
    for p in (
        Platform("linux-x64", _manylinux("x86_64")),
        Platform("windows-x64", ("win_amd64",)),
        Platform("macos-arm64", _macos("arm64")),
        Platform("macos-x64", _macos("x86_64")),
    )
}
GPU_PLATFORMS = ("linux-x64", "windows-x64")  # onnxruntime-gpu wheels exist only there
# onnxruntime-gpu has no 1.20.1 release on PyPI; 1.20.2 is the nearest of the same minor version.
# It needs CUDA 12 and cuDNN 9 on the user's machine (not bundled: they are several GB).
ONNXRUNTIME_GPU = "1.20.2"


class BuildError(RuntimeError):
    """The extension could not be built (missing files, a wheel pip cannot find)."""


def read_pins(path: Path) -> dict[str, str]:
    """name (lower case, '-' for '_') -> exact version, from a pip requirements/constraints file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_pins(gpu: bool = False) -> dict[str, str]:
    """The exact pins of what the add-on bundles: requirements.txt less numpy, plus llvmlite."""
    pins = {n: v for n, v in read_pins(ROOT / "requirements.txt").items() if n not in NOT_BUNDLED}
    constraints = read_pins(ROOT / "constraints.txt")
    for name in REQUIRED_BY_RUNTIME:
        if name not in constraints:
            raise BuildError(f"{name} has no pin in constraints.txt")
        pins[name] = constraints[name]
    if gpu:
        del pins["onnxruntime"]
        pins["onnxruntime-gpu"] = ONNXRUNTIME_GPU
    return pins


def wheel_cache(platform: Platform) -> Path:
    return ROOT / "build" / "wheels" / f"py{PYTHON_VERSION}-{platform.name}"


def cached_wheel(folder: Path, name: str, version: str) -> Path | None:
    """The wheel of name==version already in folder, if any (wheel names use '_' for '-')."""
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for wheel in sorted(folder.glob("*.whl")):
        parts = wheel.name.split("-")
        if re.sub(r"[-_.]+", "_", parts[0]).lower() == stem and parts[1] == version:
            return wheel
    return None


def fetch_wheel(platform: Platform, name: str, version: str) -> Path | None:
    """The platform's binary wheel of name==version, downloaded by pip on first use; None if
    the package publishes no wheel for that platform and Python."""
    folder = wheel_cache(platform)
    folder.mkdir(parents=True, exist_ok=True)
    found = cached_wheel(folder, name, version)
    if found:
        return found
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--python-version", PYTHON_VERSION,
               "--implementation", "cp", "--dest", str(folder), f"{name}=={version}"]
    for tag in platform.wheel_tags:
        command += ["--platform", tag]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        if "No matching distribution" in done.stderr or "Could not find a version" in done.stderr:
            return None
        raise BuildError(f"pip download {name}=={version} for {platform.name} failed:\n{done.stderr}")
    return cached_wheel(folder, name, version)


def manifest_text(platform: Platform, wheels: list[Path], version: str) -> str:
    """blender_manifest.toml for one platform's zip (schema 1.0.0)."""
    wheel_lines = "".join(f'  "./wheels/{w.name}",\n' for w in wheels)
    return f'''schema_version = "1.0.0"

id = "{ADDON_ID}"
version = "{version}"
name = "maskcap"
tagline = "Occlusion-aware facial capture onto 46 FACS shape keys from webcam or footage"
maintainer = "the maskcap developers"
type = "add-on"
tags = ["Animation", "Rigging"]

blender_version_min = "4.2.0"

license = ["SPDX:GPL-3.0-or-later"]
copyright = ["2026 the maskcap developers", "ICT-FaceKit face model: see models/ICT-FaceKit-LICENSE.txt"]

platforms = ["{platform.name}"]

wheels = [
{wheel_lines}]

[permissions]
camera = "Capture the performer's face from a webcam for live animation"
files = "Read footage and write baked masks and takes beside the .blend"
'''


# models/ files the add-on never loads: the segmenter with every stream's output, which training
# starts from and the Table 1 ablation measures (core runs models/segmenter.onnx, the fused output)
MODELS_NOT_SHIPPED = frozenset({"segmenter_streams.onnx"})
# core/ files the add-on never runs: the masks command on a Ray cluster (Ray is not shipped either)
CORE_NOT_VENDORED = frozenset({"masks/cluster.py"})


def addon_files(addon: Path = ROOT / "blender_addon") -> list[tuple[Path, str]]:
    """(source file, path inside the zip) of the add-on, the vendored core, models and licence."""
    if not (addon / "__init__.py").is_file():
        raise BuildError(f"{addon}/__init__.py not found: is this a maskcap checkout?")
    files = [(p, p.relative_to(addon).as_posix()) for p in _tree(addon)]
    files += [(p, "core/" + p.relative_to(ROOT / "core").as_posix()) for p in _tree(ROOT / "core")
              if p.relative_to(ROOT / "core").as_posix() not in CORE_NOT_VENDORED]
    files += [(p, "models/" + p.relative_to(ROOT / "models").as_posix()) for p in _tree(ROOT / "models")
              if p.name not in MODELS_NOT_SHIPPED]
    files.append((ROOT / "LICENSE", "LICENSE"))
    return files


def _tree(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(ZIP_EXCLUDE.search(part) for part in p.relative_to(folder).parts))


def build_platform(platform: Platform, output: Path, gpu: bool = False, version: str = VERSION,
                   addon: Path = ROOT / "blender_addon") -> Path:
    """Write one platform's extension zip into output and return its path."""
    wheels = []
    for name, pin in runtime_pins(gpu).items():
        wheel = fetch_wheel(platform, name, pin)
        if wheel is None:
            raise BuildError(f"no {name}=={pin} wheel for {platform.name} and Python {PYTHON_VERSION}")
        wheels.append(wheel)
    variant = "-gpu" if gpu else ""
    target = output / f"{ADDON_ID}-{version}-{platform.name}{variant}.zip"
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=output, suffix=".zip.tmp", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("blender_manifest.toml", manifest_text(platform, wheels, version))
            for source, inside in addon_files(addon):
                archive.write(source, inside)
            for wheel in wheels:  # wheels are already compressed
                archive.write(wheel, f"wheels/{wheel.name}", compress_type=zipfile.ZIP_STORED)
        partial.chmod(0o644)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                        help="build only this platform (repeatable); default: all of them")
    parser.add_argument("--output", type=Path, default=ROOT / "dist", help="folder for the zips")
    parser.add_argument("--onnxruntime-gpu", action="store_true",
                        help="bundle onnxruntime-gpu instead of the CPU build (its own, large zip)")
    parser.add_argument("--version", default=VERSION)
    args = parser.parse_args(argv)
    names = args.platform or list(PLATFORMS)
    if args.onnxruntime_gpu:
        names = [n for n in names if n in GPU_PLATFORMS]
    for name in names:
        try:
            zip_path = build_platform(PLATFORMS[name], args.output, args.onnxruntime_gpu, args.version)
        except BuildError as error:
            print(f"skipped {name}: {error}", file=sys.stderr)
            if args.platform:
                return 1
            continue
        print(f"{zip_path} {zip_path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
