"""Where a study grid's runs execute: the local process pool (``--jobs N``, the default) or a Ray
cluster (``--executor ray [--address ADDR]``; optional: ``pip install "explainreg[ray]"``).

:func:`run_on_ray` sends each item of the grid to Ray as one task with ``cpus`` CPUs (and ``gpus``
GPUs) reserved, so Ray runs as many at once as the cluster has room for. Each task writes its
results into its own run folder, exactly as a process-pool worker does; the study then reads them
back (the folders must be on a file system the workers share: a local cluster, or NFS).
``address``: ``None`` starts a local Ray (with ``num_cpus`` CPUs, all when None) for this call
and shuts it down afterwards; ``"auto"`` or ``"ray://host:10001"`` joins a running cluster.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["EXECUTORS", "check_executor", "run_on_ray"]

EXECUTORS = ("local", "ray")


def check_executor(executor: str, address: str | None = None) -> str:
    """``executor`` is ``"local"`` or ``"ray"``; ``address`` only with ``"ray"``; Ray importable."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if address is not None and executor != "ray":
        raise ValueError(f"--address {address!r} names a Ray cluster; add --executor ray")
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--executor ray needs Ray: pip install -c constraints.txt 'explainreg[ray]' "
                             "(or use the local process pool, --jobs N)") from None
    return executor


def run_on_ray(fn: Callable[..., Any], calls: Sequence[tuple], *, address: str | None = None, cpus: float = 1,
               gpus: float = 0, num_cpus: int | None = None, on_done: Callable[[Any], None] | None = None) -> list:
    """``[fn(*args) for args in calls]`` as Ray tasks of ``cpus`` CPUs / ``gpus`` GPUs each; results in
    the order of ``calls`` (``on_done`` sees each as it finishes). A task's exception is raised here
    with the failing call named. ``fn`` must be importable by the workers (a module-level function)."""
    import ray

    started = not ray.is_initialized()
    if started:
        # the workers import explainreg from this checkout's source, as this process does
        src = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": str(int(max(1, cpus)))}})
    try:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(fn)
        refs = [task.remote(*args) for args in calls]
        results: dict[Any, Any] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ref = done[0]
            try:
                results[ref] = ray.get(ref)
            except Exception as exc:  # ray.exceptions.RayTaskError wraps the worker's exception
                call = calls[refs.index(ref)]
                raise RuntimeError(f"the Ray task {fn.__name__}{call!r} failed: {exc}") from exc
            if on_done is not None:
                on_done(results[ref])
        return [results[r] for r in refs]
    finally:
        if started:
            ray.shutdown()
