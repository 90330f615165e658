"""ONNX Runtime sessions for the shipped networks: what a device name means, and why a session
runs where it does."""
from __future__ import annotations

__all__ = ["DEVICES", "DeviceError", "cuda_listed", "providers_for", "session_options", "open_session"]

DEVICES = ("cpu", "auto", "cuda")

_NO_CUDA_BUILD = ("this ONNX Runtime is the CPU build, without a CUDA provider; the add-on's -gpu zip "
                  "and the onnxruntime-gpu package have one")
_CUDA_DID_NOT_START = ("ONNX Runtime's CUDA provider did not start; it needs an NVIDIA GPU with CUDA 12 "
                       "and cuDNN 9 installed")


class DeviceError(RuntimeError):
    """device="cuda" was asked for and ONNX Runtime cannot run the network on CUDA here."""


def cuda_listed() -> bool:
    """Whether this ONNX Runtime build has a CUDA provider (onnxruntime-gpu; it is listed even
    where CUDA itself is missing, so only a session that starts on it tells for sure)."""
    import onnxruntime as ort
    return "CUDAExecutionProvider" in ort.get_available_providers()


def providers_for(device: str, device_error: type[Exception] = DeviceError) -> list[str]:
    """"cpu": the CPU alone; "auto" and "cuda": CUDA first when this build lists it ("cuda"
    without it raises `device_error`). The caller checks that a session really came up on CUDA."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if cuda_listed():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise device_error(f"device 'cuda' was asked for, but {_NO_CUDA_BUILD}")
    return ["CPUExecutionProvider"]


def session_options(intra_op_threads: int, inter_op_threads: int = 1):
    """Sequential execution on `intra_op_threads` threads, warnings silenced."""
    import onnxruntime as ort
    for name, value in (("intra_op_threads", intra_op_threads), ("inter_op_threads", inter_op_threads)):
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(intra_op_threads)
    so.inter_op_num_threads = int(inter_op_threads)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return so


def open_session(path, device: str, intra_op_threads: int, inter_op_threads: int = 1,
                 error: type[Exception] = RuntimeError, what: str = "model",
                 device_error: type[Exception] = DeviceError):
    """(InferenceSession of the file on the device's providers, note). "auto" falls back to the
    CPU when CUDA is missing or does not start, and the note says why (empty otherwise); "cuda"
    raises `device_error` instead. A file ONNX Runtime cannot load raises `error` naming `what`."""
    import onnxruntime as ort
    so = session_options(intra_op_threads, inter_op_threads)
    providers = providers_for(device, device_error)
    note = "" if device == "cpu" or "CUDAExecutionProvider" in providers else f"CUDA is not used: {_NO_CUDA_BUILD}"
    try:
        session = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise error(f"could not load the {what} {path}: {exc}") from exc
    if "CUDAExecutionProvider" in providers and session.get_providers()[0] != "CUDAExecutionProvider":
        if device == "cuda":
            raise device_error(f"device 'cuda' was asked for, but {_CUDA_DID_NOT_START}")
        note = f"CUDA is not used: {_CUDA_DID_NOT_START}"
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return session, note
