"""e5's self-attention as one compiled call per layer (vectorstore/attention.c), built once per machine with its
C compiler and kept beside the model's ready-to-map copy. Where it cannot be built (no compiler, a CPU without
AVX-512, a torch without the GNU OpenMP runtime it runs on) the encoder keeps torch's fused attention: the
vectors are the same to cosine 0.99998, the kernel is only faster (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from functools import cache
from pathlib import Path

import torch

from vectorstore.e5_model import default_cache_dir

__all__ = ["OPENMP_RUNTIME", "AttentionKernel", "find_compiler", "load_kernel"]

_log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("attention.c")
MAX_WINDOW = 512  # the kernel's scratch, e5's longest window
_TYPES = {torch.bfloat16: 1, torch.float32: 0}
OPENMP_RUNTIME = Path(torch.__file__).parent / "lib" / "libgomp.so.1"  # torch's own, which the kernel links to


class AttentionKernel:
    """The compiled e5_attention: softmax(q k^T / sqrt(32)) v for every head of every window in one call."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._call = library.e5_attention
        self._call.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ctypes.c_int]
        self._call.restype = ctypes.c_int

    def __call__(self, qkv: torch.Tensor, out: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> None:
        """Write the attention of the windows (rows starts[w] .. starts[w] + lengths[w] of `qkv`, [tokens,
        3 x hidden]) into the same rows of `out` ([tokens, hidden]); other rows of `out` are left as they are."""
        heads = out.shape[1] // 32
        if qkv.dtype not in _TYPES or out.dtype != qkv.dtype or qkv.shape[1] != 3 * out.shape[1]:
            raise ValueError(f"attention takes [n, 3h] and [n, h] of one type, not {qkv.shape} and {out.shape}")
        if not (qkv.is_contiguous() and out.is_contiguous() and starts.dtype == lengths.dtype == torch.int64):
            raise ValueError("attention takes contiguous tensors and int64 window bounds")
        failed = self._call(
            qkv.data_ptr(),
            out.data_ptr(),
            starts.data_ptr(),
            lengths.data_ptr(),
            len(lengths),
            heads,
            _TYPES[qkv.dtype],
            torch.get_num_threads(),
        )
        if failed:
            raise ValueError(f"attention takes windows of 1 to {MAX_WINDOW} tokens, not {lengths.tolist()}")


@cache
def load_kernel(cache_dir: Path | None = None) -> AttentionKernel | None:
    """The kernel built for this machine under `cache_dir` (default: the model's cache folder), building it the
    first time; None, with the reason logged once, where it cannot be built. A failed build is remembered too,
    so a machine without AVX-512 does not run the compiler at every start."""
    folder = (cache_dir if cache_dir is not None else default_cache_dir()) / "kernels"
    compiler = find_compiler()
    if not compiler:
        _log.info("attention: torch's (no C compiler to build %s)", SOURCE.name)
        return None
    if not OPENMP_RUNTIME.exists():
        _log.info("attention: torch's (this torch has no %s for the kernel to share)", OPENMP_RUNTIME)
        return None
    key = _build_key(compiler)
    library, failure = folder / f"attention-{key}.so", folder / f"attention-{key}.failed"
    if failure.exists():
        _log.info("attention: torch's (%s)", failure.read_text(encoding="utf-8", errors="replace").strip())
        return None
    if not library.exists():
        reason = _build(compiler, folder, library)
        if reason:
            _log.info("attention: torch's (%s)", reason)
            with contextlib.suppress(OSError):  # not remembered: tried again at the next start
                failure.write_text(reason + "\n", encoding="utf-8")
            return None
    try:
        return AttentionKernel(ctypes.CDLL(str(library)))
    except (OSError, AttributeError) as exc:  # unreadable, or not our library
        _log.warning("attention: torch's (cannot load %s: %s)", library, exc)
        return None


def find_compiler() -> str | None:
    """The C compiler to build with: $CC, else cc, else gcc."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _build_key(compiler: str) -> str:
    """What the library depends on: the source, the compiler, this CPU (built for it: -march=native), torch."""
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    digest = hashlib.sha256(SOURCE.read_bytes())
    for part in (compiler, version, _cpu_identity(), torch.__version__):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _cpu_identity() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags", "cpu family", "model\t"))]
    return "\n".join(dict.fromkeys(lines))


def _build(compiler: str, folder: Path, library: Path) -> str | None:
    """Compile the kernel into `library` (atomically: processes building at once never load half a file);
    the reason it failed, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot write {folder}: {exc}"
    temp = folder / f".{library.name}.{os.getpid()}.tmp"
    command = [compiler, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", str(SOURCE), "-o", str(temp)]
    # linked to torch's own OpenMP runtime, so the kernel runs on torch's threads rather than a second pool
    command += [str(OPENMP_RUNTIME), f"-Wl,-rpath,{OPENMP_RUNTIME.parent}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:300])
            return f"{Path(compiler).name} could not build {SOURCE.name}: {first}"
        os.replace(temp, library)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot build {SOURCE.name}: {exc}"
    finally:
        temp.unlink(missing_ok=True)
    _log.info("attention: built %s", library)
    return None
