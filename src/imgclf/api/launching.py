"""Several processes through torchrun: ``imgclf train ... --nproc-per-node N`` re-executes
itself as ``python -m torch.distributed.run ... -m imgclf train ...`` (no temporary script),
and ``torchrun -m imgclf train ...`` works as well."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from imgclf.errors import ConfigError

LAUNCH_OPTIONS = ("--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-endpoint")


def under_torchrun() -> bool:
    """Whether this process is one of torchrun's workers."""
    return "LOCAL_RANK" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ


def launch(
    command: list[str],
    nproc_per_node: int,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
) -> int:
    """Run ``imgclf COMMAND`` in ``nproc_per_node`` processes on this node (of ``nnodes``),
    meeting at ``rdzv_endpoint`` (HOST:PORT of node 0; default: a free loopback port when
    there is one node). Returns torchrun's exit code.

    Each process computes with the cores divided by the processes of its node (torchrun's
    OMP_NUM_THREADS=1 is overridden on purpose: imgclf's Runtime sets torch's threads)."""
    from imgclf.cores import available_cores

    if nproc_per_node < 1 or nnodes < 1:
        raise ConfigError("--nproc-per-node and --nnodes must be at least 1.")
    if not 0 <= node_rank < nnodes:
        raise ConfigError(f"--node-rank must be in 0..{nnodes - 1}, received {node_rank}.")
    if nnodes > 1 and not rdzv_endpoint:
        raise ConfigError(
            "--nnodes above 1 needs --rdzv-endpoint HOST:PORT: the address of the node with "
            "--node-rank 0 and a port open to the others."
        )
    host, port = _endpoint(rdzv_endpoint) if rdzv_endpoint else ("127.0.0.1", _free_port())
    if node_rank == 0:
        _check_free(host, port)
    threads = max(1, available_cores() // nproc_per_node)
    args = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc_per_node}",
        f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--master-addr={host}",
        f"--master-port={port}", "-m", "imgclf", *command,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.call(args, env=env)


def without_launch_options(argv: list[str]) -> list[str]:
    """``argv`` less the launch options and their values (``--opt V`` or ``--opt=V``)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{name}=" for name in LAUNCH_OPTIONS)):
            kept.append(arg)
    return kept


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--rdzv-endpoint must be HOST:PORT, received '{text}'.")
    return host.strip("[]"), int(port)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_free(host: str, port: int) -> None:
    """Node 0 listens on ``port``: say so in one line when something else already does."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ConfigError(f"--rdzv-endpoint host '{host}' cannot be resolved.") from None
    family, *_, address = addresses[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == 99:  # not an address of this machine: node 0 runs elsewhere
                return
            raise ConfigError(
                f"Port {port} on {host} is in use ({exc.strerror}): pick another with "
                "--rdzv-endpoint HOST:PORT."
            ) from None
