"""A process that builds, trains, saves and loads a run never imports torch._dynamo: 1.3 s
of CPU and 60 MB at every start of a console, a headless run or a sweep worker. torch's
optimizer wraps its methods for torch.compile, which freqtui never uses, and those
wrappers import it (engine/training/base.py: `skip_dynamo_import`, `adam_step`). Checked
in a fresh interpreter, since this test process may have imported it already; and
`adam_step` must move weights and Adam's moments bitwise as `optimizer.step()` does."""

import subprocess
import sys

import pytest
import torch

from engine.training.base import adam_step

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
    trainer.train_rows(50)
    trainer.load_state_dict(trainer.state_dict())
    trainer.train_rows(50)
print("torch._dynamo" in sys.modules)
"""


@pytest.mark.slow
def test_training_saving_and_loading_on_the_torch_backend_never_imports_torch_dynamo():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False", "torch._dynamo was imported"


@pytest.mark.parametrize("clip", [0.0, 1.0])
def test_adam_step_is_optimizer_step_bitwise(clip):
    torch.manual_seed(0)
    models = [torch.nn.LSTM(5, 64), torch.nn.LSTM(5, 64)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [torch.optim.Adam(m.parameters(), lr=3e-3) for m in models]
    x = torch.randn(300, 1, 1, 5)
    for row in x:
        for m, opt, step in zip(models, opts, (adam_step, torch.optim.Adam.step), strict=True):
            out, _ = m(row)
            opt.zero_grad()
            out.pow(2).sum().backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
            step(opt)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)
        sa, sb = opts[0].state[a], opts[1].state[b]
        assert set(sa) == set(sb) == {"step", "exp_avg", "exp_avg_sq"}
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
