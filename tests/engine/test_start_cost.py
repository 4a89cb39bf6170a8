"""A new process that builds, saves and loads a run never imports torch._dynamo (1.3 s
of CPU and 60 MB at every start of the console or a headless run; torch's optimizer
methods import it only to keep themselves out of torch.compile, which freqtui never
uses: engine/training/base.py `skip_dynamo_import`). Checked in a fresh interpreter,
since this test process may have imported it already."""

import subprocess
import sys

import pytest

PROBE = """
import sys
import torch
from engine.config import RunConfig
from engine.model import build_model
from engine.signals import train_set
from engine.training import make_trainer

for method in ("clock", "handoff", "tbptt"):
    config = RunConfig(method=method, duration=0.05, backend="torch").validated()
    trainer = make_trainer(build_model(config), config, train_set(config))
    trainer.optimizer.zero_grad()
    trainer.load_state_dict(trainer.state_dict())
print("torch._dynamo" in sys.modules)
"""


@pytest.mark.slow
def test_building_saving_and_loading_a_trainer_never_imports_torch_dynamo():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False", "torch._dynamo was imported"
