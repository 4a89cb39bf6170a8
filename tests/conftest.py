import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # an L = 1 step is far too small for intra-op threads; they only add contention
    torch.set_num_threads(1)
