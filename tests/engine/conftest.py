"""Engine test fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The engine tests use tiny networks that gain nothing from intra-op threads, and on a
    # loaded 2-core machine OpenMP barriers made each tiny step ~100x slower with 2 threads.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
