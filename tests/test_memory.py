"""clipnb.models.memory: after reuse_freed_memory, a thread that allocates and frees a batch's activations again and
again gets them from the allocator, not from fresh pages (glibc only; checked in a fresh process, since the
setting lasts for the process)."""
import json
import platform
import subprocess
import sys

import pytest

CHURN = """
import json, resource, sys, threading, torch
from clipnb.models.memory import reuse_freed_memory
taken = reuse_freed_memory() if sys.argv[1] == "reuse" else None
faults = []
def work():  # a stream: one thread, batch after batch of activations like ViT-B/32's (8 x 9.8 MB)
    for _ in range(14):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        held = [torch.ones(16, 50, 3072) for _ in range(8)]
        del held
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(json.dumps({"taken": taken, "faults": faults}))
"""


def churn(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_activations_are_reused_not_faulted_in_again():
    reused = churn("reuse")
    assert reused["taken"] is True
    # after a few batches to grow the thread's heap, no batch touches a fresh page
    assert sum(reused["faults"][4:]) == 0, reused["faults"]


def test_release_and_reuse_are_safe_to_call_again():
    from clipnb.models.memory import release_freed_memory, reuse_freed_memory

    first = reuse_freed_memory()
    assert reuse_freed_memory() == first
    release_freed_memory()
