"""Process-wide runtime settings: torch thread count.

On the shared 2-vCPU VMs this project runs on, torch with 2 intra-op threads made the small matmuls of
a 135M model 10-30x slower than with 1 whenever another process was busy (64 tokens at batch 2: 126 s
with 2 threads, 9.7 s with 1): two spinning OpenMP threads fight the other process for the cores. On an
idle VM 2 threads were 1.5x faster (bench/explain_latency.py). Robustness wins on shared machines, so
hosts with <= 2 CPUs get 1 thread by default; `AFFECT_LLM_THREADS=N` overrides it everywhere.
"""

from __future__ import annotations

import os

from affect_llm.errors import AffectError

_configured: int | None = None


def default_threads() -> int:
    """The thread count we use when the user did not choose one."""
    env = os.environ.get("AFFECT_LLM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise AffectError(f"AFFECT_LLM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise AffectError(f"AFFECT_LLM_THREADS must be a positive integer, got {env!r}")
        return n
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cpus <= 2 else cpus


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads and return the count in force.

    Cheap, so it is applied on every call: some libraries (numba, used by openai-whisper's word
    timing) reset torch to all cores behind our back, which made decoding 3-9x slower here.
    """
    global _configured
    import torch

    if n is None:
        n = _configured if _configured is not None else default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _configured = n
    return n
