"""Build maskcap's Blender extension zips (Blender 4.2 and newer) into dist/, one per platform and
range of Blender versions.

Blender 4.2 to 5.0 run CPython 3.11 with numpy 1.26; Blender 5.1 and newer run CPython 3.13 with
numpy 2.3. A zip carries the wheels of one Python, and its manifest's blender_version_min/max
name the Blender versions that run that Python, so Blender offers each user the zip that fits:
one zip with both Pythons' wheels would be about 110 MB larger (over 290 MB on Linux), and Blender
4.2.0 does not sort wheels by Python version (it would unpack the 3.13 ones). Each zip holds
blender_manifest.toml, the add-on (blender_addon/ as the package root), core/ vendored inside it,
the models, the licence and the run-time dependencies as wheels for that platform and Python.
numpy is not bundled: every Blender ships it. Wheels are downloaded once with pip into
build/wheels/ and reused, so rebuilds are offline. Standard library only, plus pip for the wheels.

    python build_addon.py                                     # every platform and range, CPU ONNX Runtime
    python build_addon.py --platform linux-x64 --blender 4.2  # what the tests build for 4.2 and 5.0
    python build_addon.py --onnxruntime-gpu                   # the GPU variants (Linux and Windows x64)

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


@dataclass(frozen=True)
class BlenderRange:
    """Blender versions that run one CPython: version_max is the first one they do not include."""

    name: str
    python: str
    version_min: str
    version_max: str | None
    platforms: tuple[str, ...]

    @property
    def label(self) -> str:
        """How zip names say the range: blender4.2-5.0, blender5.1-later."""
        if self.version_max is None:
            return f"blender{self.name}-later"
        major, minor = (int(v) for v in self.version_max.split(".")[:2])
        last = f"{major}.{minor - 1}" if minor else f"{major - 1}.x"
        return f"blender{self.name}-{last}"


PLATFORMS = {
    p.name: p
    for p in (
        Platform("linux-x64", _manylinux("x86_64")),
        Platform("windows-x64", ("win_amd64",)),
        Platform("macos-arm64", _macos("arm64")),
        Platform("macos-x64", _macos("x86_64")),
    )
}
# Blender 5.0 and newer have no Intel macOS build, so the macos-x64 zip serves 4.2 to 4.5.
BLENDER_RANGES = {
    r.name: r
    for r in (
        BlenderRange("4.2", "3.11", "4.2.0", "5.1.0", ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")),
        BlenderRange("5.1", "3.13", "5.1.0", None, ("linux-x64", "windows-x64", "macos-arm64")),
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


def wheel_cache(platform: Platform, python: str) -> Path:
    return ROOT / "build" / "wheels" / f"py{python}-{platform.name}"


def cached_wheel(folder: Path, name: str, version: str) -> Path | None:
    """The wheel of name==version already in folder, if any (wheel names use '_' for '-')."""
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for wheel in sorted(folder.glob("*.whl")):
        parts = wheel.name.split("-")
        if re.sub(r"[-_.]+", "_", parts[0]).lower() == stem and parts[1] == version:
            return wheel
    return None


def fetch_wheel(platform: Platform, name: str, version: str, python: str) -> Path | None:
    """The binary wheel of name==version for the platform and CPython version, downloaded by pip
    on first use; None if the package publishes no such wheel."""
    folder = wheel_cache(platform, python)
    folder.mkdir(parents=True, exist_ok=True)
    found = cached_wheel(folder, name, version)
    if found:
        return found
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--python-version", python,
               "--implementation", "cp", "--dest", str(folder), f"{name}=={version}"]
    for tag in platform.wheel_tags:
        command += ["--platform", tag]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        if "No matching distribution" in done.stderr or "Could not find a version" in done.stderr:
            return None
        raise BuildError(f"pip download {name}=={version} for {platform.name} failed:\n{done.stderr}")
    return cached_wheel(folder, name, version)


def manifest_text(platform: Platform, wheels: list[Path], version: str, blender: BlenderRange) -> str:
    """blender_manifest.toml for one platform's zip of one Blender range (schema 1.0.0)."""
    wheel_lines = "".join(f'  "./wheels/{w.name}",\n' for w in wheels)
    version_max = f'blender_version_max = "{blender.version_max}"\n' if blender.version_max else ""
    return f'''schema_version = "1.0.0"

id = "{ADDON_ID}"
version = "{version}"
name = "maskcap"
tagline = "Occlusion-aware facial capture onto 46 FACS shape keys from webcam or footage"
maintainer = "the maskcap developers"
type = "add-on"
tags = ["Animation", "Rigging"]

blender_version_min = "{blender.version_min}"
{version_max}
license = ["SPDX:GPL-3.0-or-later"]
copyright = ["2026 the maskcap developers", "ICT-FaceKit face model: see models/ICT-FaceKit-LICENSE.txt", "CenterFace face detector (StarClouds, MIT): see models/CenterFace-LICENSE.txt"]

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


def zip_name(platform: Platform, blender: BlenderRange, gpu: bool = False, version: str = VERSION) -> str:
    """maskcap-0.1.0-linux-x64-blender4.2-5.0.zip, ...-blender5.1-later-gpu.zip"""
    return f"{ADDON_ID}-{version}-{platform.name}-{blender.label}{'-gpu' if gpu else ''}.zip"


def build_platform(platform: Platform, output: Path, gpu: bool = False, version: str = VERSION,
                   addon: Path = ROOT / "blender_addon", blender: BlenderRange = BLENDER_RANGES["4.2"]) -> Path:
    """Write one platform's extension zip for one Blender range into output and return its path."""
    if platform.name not in blender.platforms:
        raise BuildError(f"Blender {blender.version_min} and newer has no {platform.name} build")
    wheels = []
    for name, pin in runtime_pins(gpu).items():
        wheel = fetch_wheel(platform, name, pin, blender.python)
        if wheel is None:
            raise BuildError(f"no {name}=={pin} wheel for {platform.name} and Python {blender.python}")
        wheels.append(wheel)
    target = output / zip_name(platform, blender, gpu, version)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=output, suffix=".zip.tmp", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("blender_manifest.toml", manifest_text(platform, wheels, version, blender))
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
    parser.add_argument("--blender", action="append", choices=sorted(BLENDER_RANGES),
                        help="build only the zips for Blender 4.2 to 5.0 (Python 3.11) or 5.1 and newer "
                             "(Python 3.13); repeatable; default: both")
    parser.add_argument("--output", type=Path, default=ROOT / "dist", help="folder for the zips")
    parser.add_argument("--onnxruntime-gpu", action="store_true",
                        help="bundle onnxruntime-gpu instead of the CPU build (its own, large zip)")
    parser.add_argument("--version", default=VERSION)
    args = parser.parse_args(argv)
    names = args.platform or list(PLATFORMS)
    if args.onnxruntime_gpu:
        names = [n for n in names if n in GPU_PLATFORMS]
    ranges = [BLENDER_RANGES[r] for r in (args.blender or BLENDER_RANGES)]
    for blender in ranges:
        for name in names:
            if name not in blender.platforms:
                if args.platform and args.blender:
                    print(f"Blender {blender.version_min} and newer has no {name} build", file=sys.stderr)
                    return 1
                continue
            try:
                zip_path = build_platform(PLATFORMS[name], args.output, args.onnxruntime_gpu, args.version,
                                          blender=blender)
            except BuildError as error:
                print(f"skipped {name} for Blender {blender.version_min}: {error}", file=sys.stderr)
                if args.platform:
                    return 1
                continue
            print(f"{zip_path} {zip_path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
