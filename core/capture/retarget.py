"""Retargeting: the 46 FACS channels onto a rig's shape keys, and per-channel value mapping.

Rig key names are matched to FACS, ARKit or ICT-FaceKit names after normalising case,
separators and Left/Right spellings ("eyeBlinkLeft", "EyeBlink_L", "eye-blink.l" all match).
A channel may drive several keys (ICT rigs split BrowsU_C into browInnerUp_L and _R).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ..face.facs import FACS_NAMES, FACS_TO_ARKIT, FACS_TO_ICT, NUM_FACS

PRESET_VERSION = 1
_SEPARATORS = re.compile(r"[\s_\-.:|]+")


def normalize_name(name: str) -> str:
    """Lower case without separators, with a trailing left/right spelled l/r."""
    n = _SEPARATORS.sub("", name.strip().lower())
    for long, short in (("left", "l"), ("right", "r")):
        if n.endswith(long):
            n = n[: -len(long)] + short
    return n


def _name_variants(key_name: str) -> set[str]:
    """The key's normalised name, also without a namespace prefix ("Face.eyeBlinkLeft")."""
    variants = {normalize_name(key_name)}
    for sep in (".", ":", "|"):
        if sep in key_name:
            variants.add(normalize_name(key_name.rsplit(sep, 1)[1]))
    return variants


def channel_aliases(facs_name: str) -> tuple[tuple[str, ...], ...]:
    """Candidate key-name groups for one channel, best first: FACS, ARKit, then ICT's shapes
    (a group of several names means every one of them is driven)."""
    return ((facs_name,), (FACS_TO_ARKIT[facs_name],), FACS_TO_ICT[facs_name])


def auto_map(key_names) -> dict[str, tuple[str, ...]]:
    """For each of the 46 channels, the rig keys that drive it (empty tuple when the rig lacks it)."""
    index: dict[str, str] = {}
    for key in key_names:
        for v in _name_variants(key):
            index.setdefault(v, key)
    mapping: dict[str, tuple[str, ...]] = {}
    for facs in FACS_NAMES:
        found: tuple[str, ...] = ()
        for group in channel_aliases(facs):
            keys = tuple(index.get(normalize_name(n)) for n in group)
            if all(keys):
                found = keys  # type: ignore[assignment]
                break
        mapping[facs] = found
    return mapping


def missing_channels(mapping: dict[str, tuple[str, ...]], key_names=None) -> list[str]:
    """Channels with no key, or (when key_names is given) with a key the rig does not have."""
    present = None if key_names is None else set(key_names)
    return [f for f in FACS_NAMES
            if not mapping.get(f) or (present is not None and any(k not in present for k in mapping[f]))]


def split_keys(text: str) -> tuple[str, ...]:
    """Comma-separated key names as typed in the UI."""
    return tuple(k.strip() for k in text.split(",") if k.strip())


@dataclass
class ChannelParams:
    """value = clamp(gain * (raw - neutral) + offset, clamp_min, clamp_max)."""

    keys: tuple[str, ...] = ()
    gain: float = 1.0
    offset: float = 0.0
    clamp_min: float = 0.0
    clamp_max: float = 1.0
    neutral: float = 0.0


@dataclass
class ChannelMap:
    """The 46 channels' parameters as arrays, for vectorised mapping of whole takes."""

    gain: np.ndarray = field(default_factory=lambda: np.ones(NUM_FACS))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(NUM_FACS))
    clamp_min: np.ndarray = field(default_factory=lambda: np.zeros(NUM_FACS))
    clamp_max: np.ndarray = field(default_factory=lambda: np.ones(NUM_FACS))
    neutral: np.ndarray = field(default_factory=lambda: np.zeros(NUM_FACS))

    @classmethod
    def from_params(cls, params: list[ChannelParams]) -> "ChannelMap":
        if len(params) != NUM_FACS:
            raise ValueError(f"need {NUM_FACS} channel parameters, got {len(params)}")
        arr = lambda name: np.array([getattr(p, name) for p in params], np.float64)  # noqa: E731
        return cls(arr("gain"), arr("offset"), arr("clamp_min"), arr("clamp_max"), arr("neutral"))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Map raw FACS weights (..., 46) to rig values (..., 46)."""
        raw = np.asarray(raw, np.float64)
        if raw.shape[-1] != NUM_FACS:
            raise ValueError(f"need {NUM_FACS} FACS weights per frame, got shape {raw.shape}")
        lo = np.minimum(self.clamp_min, self.clamp_max)
        return np.clip(self.gain * (raw - self.neutral) + self.offset, lo, self.clamp_max)


def preset_json(params: list[ChannelParams], head: dict | None = None) -> str:
    """A preset as JSON: the mapping and value parameters per FACS channel (not the neutral,
    which belongs to a performer, not a rig), and optional head settings."""
    channels = {}
    for facs, p in zip(FACS_NAMES, params):
        d = asdict(p)
        d.pop("neutral")
        d["keys"] = list(p.keys)
        channels[facs] = d
    return json.dumps({"maskcap_preset": PRESET_VERSION, "channels": channels, "head": head or {}}, indent=1)


def parse_preset(text: str) -> tuple[dict[str, ChannelParams], dict]:
    """Channels and head settings from preset JSON; ValueError saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"preset is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("maskcap_preset") != PRESET_VERSION:
        raise ValueError(f"not a maskcap preset (version {PRESET_VERSION})")
    channels = data.get("channels")
    if not isinstance(channels, dict):
        raise ValueError("preset has no 'channels' table")
    unknown = sorted(set(channels) - set(FACS_NAMES))
    if unknown:
        raise ValueError(f"preset names unknown channels: {', '.join(unknown[:5])}")
    out = {}
    for facs, d in channels.items():
        try:
            out[facs] = ChannelParams(keys=tuple(str(k) for k in d.get("keys", ())),
                                      gain=float(d.get("gain", 1.0)), offset=float(d.get("offset", 0.0)),
                                      clamp_min=float(d.get("clamp_min", 0.0)),
                                      clamp_max=float(d.get("clamp_max", 1.0)))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"preset channel {facs}: {exc}") from exc
    head = data.get("head", {})
    return out, head if isinstance(head, dict) else {}


def key_values(keys_per_channel: list[tuple[str, ...]], values: np.ndarray) -> dict[str, np.ndarray]:
    """Rig values per shape key from mapped channel values (..., 46); a key that several
    channels drive takes the largest of them."""
    values = np.asarray(values, np.float64)
    out: dict[str, np.ndarray] = {}
    for c, keys in enumerate(keys_per_channel):
        for key in keys:
            v = values[..., c]
            out[key] = np.maximum(out[key], v) if key in out else v.copy()
    return out
