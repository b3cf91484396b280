"""Where and how tensors compute: device, precision, threads and the process's rank.

One Runtime is made per run (``Runtime.create``) and passed to training, embedding, evaluation
and prediction; nothing else chooses a device. Its rules follow Lightning's and timm's:
- ``auto`` picks CUDA, then MPS, then the CPU; under torchrun each process takes
  ``cuda:LOCAL_RANK``.
- ``16-mixed`` autocasts to float16 with a GradScaler, on CUDA (and MPS, without a scaler);
  a CPU has no fast float16, so it is refused there.
- ``bf16-mixed`` autocasts to bfloat16 (no scaler needed); on a CPU only where it has native
  bf16 (AVX512_BF16 or AMX): elsewhere bf16 matmul is emulated, 44-499x slower than fp32.
- ``auto`` is bf16-mixed where the device has native bf16 (such a CPU, a CUDA GPU with bf16),
  else 32 (BENCHMARKS.md, "Speed": fast_cifar's accuracy holds in bf16 at half the time).
- Threads: the cores this process may use divided by the processes on this machine.
- Only the main process (rank 0) writes run folders and prints.

This is a base module beside ``config`` (not in ``train/``) because inference in ``models``
and prediction need it too, and models never import train.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import torch

from imgclf.config import DEVICE_PATTERN, DEVICES, NOTES, Precision, PrecisionSetting, choices_text
from imgclf.cores import available_cores
from imgclf.errors import ConfigError

PRECISIONS: tuple[str, ...] = get_args(Precision)  # what a Runtime computes in (auto resolved)
AUTO_PRECISION = "auto"
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Runtime:
    """The resolved device, precision, threads and distributed rank of one process."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "32"
    threads: int | None = None  # None: leave torch's setting alone
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def create(
        cls,
        device: str = "auto",
        precision: str = "32",
        threads: int | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        local_rank: int | None = None,
    ) -> Runtime:
        """Resolve ``device`` and check ``precision`` on it; rank and sizes default to
        torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), else a single process.

        Raises:
            ConfigError: an unknown device or precision, a device this machine lacks, or a
                precision the device cannot run fast (the message says why).
        """
        rank = _env_int("RANK", 0) if rank is None else rank
        world_size = _env_int("WORLD_SIZE", 1) if world_size is None else world_size
        local_rank = _env_int("LOCAL_RANK", 0) if local_rank is None else local_rank
        resolved = resolve_device(device, local_rank)
        precision = resolve_precision(str(precision), resolved)
        check_precision(precision, resolved)
        if threads is None:
            local_processes = _env_int("LOCAL_WORLD_SIZE", 1)
            threads = max(1, available_cores() // max(1, local_processes))
        return cls(resolved, str(precision), threads, rank, world_size, local_rank)

    @classmethod
    def from_config(cls, train_cfg) -> Runtime:
        """The runtime a config's ``train.device``, ``train.precision`` and ``train.threads``
        ask for."""
        return cls.create(train_cfg.device, train_cfg.precision, train_cfg.threads)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder and prints (rank 0)."""
        return self.rank == 0

    @property
    def pin_memory(self) -> bool:
        """Whether batches go through pinned memory (CUDA only: it is a cost elsewhere)."""
        return self.device.type == "cuda"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(self.precision)

    def apply(self) -> None:
        """Set torch's thread count (and the current CUDA device) for this process."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)

    def autocast(self) -> AbstractContextManager:
        """Mixed precision for a forward pass; a no-op at 32-bit precision."""
        dtype = self.autocast_dtype
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """The loss scaler: enabled for float16 on CUDA only (bf16 and fp32 need none; a
        disabled scaler passes the loss and the step through unchanged)."""
        enabled = self.precision == "16-mixed" and self.device.type == "cuda"
        return torch.amp.GradScaler(self.device.type, enabled=enabled)

    def move(self, tensor: torch.Tensor) -> torch.Tensor:
        """A CPU-built batch on this device: pinned and ``non_blocking`` on CUDA, the same
        tensor (no copy) on the CPU."""
        if tensor.device == self.device:
            return tensor
        if self.pin_memory:
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def describe(self) -> dict[str, object]:
        """What metrics.json records of the runtime."""
        return {
            "device": str(self.device),
            "precision": self.precision,
            "threads": self.threads or torch.get_num_threads(),
            "world_size": self.world_size,
        }


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA, then MPS, then CPU; ``cuda`` under torchrun: ``cuda:LOCAL_RANK``."""
    name = str(name).strip().lower()
    if not re.fullmatch(DEVICE_PATTERN, name):
        raise ConfigError(
            f"Unknown device '{name}'. Use {choices_text(DEVICES)} (auto: "
            f"{NOTES['device']['auto']})."
        )
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif _mps_available():
            name = "mps"
        else:
            return torch.device("cpu")
    if name.startswith("cuda"):
        return _cuda_device(name, local_rank)
    if name == "mps" and not _mps_available():
        raise ConfigError("Device 'mps' is not available: this is not an Apple-silicon Mac "
                          "with an MPS-enabled torch. Use --device cpu or auto.")  # fmt: skip
    return torch.device(name)


def _cuda_device(name: str, local_rank: int) -> torch.device:
    if not torch.cuda.is_available():
        build = "CPU-only torch build" if torch.version.cuda is None else "no CUDA device found"
        raise ConfigError(f"Device '{name}' is not available ({build}). Use --device cpu or auto.")
    index = int(name.partition(":")[2]) if ":" in name else local_rank
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"Device '{name}' does not exist: this machine has {count} CUDA device"
            f"{'s' * (count != 1)} (cuda:0 to cuda:{count - 1})."
        )
    return torch.device("cuda", index)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16-mixed where ``device`` computes bf16 natively, else 32; others as given."""
    if precision != AUTO_PRECISION:
        return precision
    if device.type == "cpu":
        return "bf16-mixed" if cpu_has_native_bf16() else "32"
    if device.type == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32"
    return "32"


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device has no fast arithmetic for, saying why."""
    if precision not in PRECISIONS:
        allowed = choices_text(get_args(PrecisionSetting))
        raise ConfigError(f"Unknown precision '{precision}'. Use {allowed}.")
    if precision == "16-mixed" and device.type == "cpu":
        raise ConfigError(
            "precision 16-mixed needs a GPU: CPUs have no fast float16 arithmetic. Use "
            "bf16-mixed on a CPU with native bf16 (AVX512_BF16 or AMX), or 32."
        )
    if precision == "bf16-mixed" and device.type == "cpu" and not cpu_has_native_bf16():
        raise ConfigError(
            "precision bf16-mixed needs a CPU with native bf16 (the avx512_bf16 or amx_bf16 "
            "flag); this CPU has neither, and emulated bf16 matmul is 44-499x slower than "
            "fp32. Use precision 32."
        )
    if precision == "bf16-mixed" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"precision bf16-mixed needs a GPU with bf16 (Ampere or newer); {device} has none. "
            "Use 16-mixed."
        )


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU flags include avx512_bf16 or amx_bf16 (Linux; False elsewhere)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(flag in flags for flag in _CPU_BF16_FLAGS)
    return False


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (for the ledger), or the platform's processor string."""
    import platform

    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default
