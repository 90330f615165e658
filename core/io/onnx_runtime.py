"""ONNX Runtime sessions for the shipped networks: which execution providers a device name means."""
from __future__ import annotations

__all__ = ["providers_for", "session_options", "open_session"]


def providers_for(device: str) -> list[str]:
    """"cpu": the CPU provider alone; "auto": CUDA first when onnxruntime-gpu offers it (the caller
    checks that the session really came up on it: the GPU wheel lists CUDA even where it is missing)."""
    import onnxruntime as ort
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    raise ValueError(f"device must be 'cpu' or 'auto', got {device!r}")


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
                 error: type[Exception] = RuntimeError, what: str = "model"):
    """An InferenceSession of the file on the device's providers, on the CPU when CUDA was asked
    for but did not come up; a file ONNX Runtime cannot load raises `error` naming `what`."""
    import onnxruntime as ort
    so = session_options(intra_op_threads, inter_op_threads)
    providers = providers_for(device)
    try:
        session = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise error(f"could not load the {what} {path}: {exc}") from exc
    if "CUDAExecutionProvider" in providers and session.get_providers()[0] != "CUDAExecutionProvider":
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return session
