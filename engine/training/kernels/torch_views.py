"""What both fused kernels need from torch: numpy views on the memory of the model's
parameters and of torch.optim.Adam's state, so the kernels update them in place."""

from __future__ import annotations

import numpy as np
import torch


def flat_view(t: torch.Tensor, dtype: torch.dtype, error: type[Exception], who: str) -> np.ndarray:
    """A writable numpy view sharing memory with ``t``; `error` names `who` cannot use it."""
    if t.dtype != dtype or t.device.type != "cpu" or not t.is_contiguous():
        raise error(f"{who} needs contiguous {dtype} CPU tensors, got {t.dtype} on {t.device.type}")
    return t.detach().view(-1).numpy()


def adam_state_views(
    optimizer: torch.optim.Optimizer,
    params: tuple[torch.Tensor, ...],
    dtype: torch.dtype,
    error: type[Exception],
    who: str,
) -> tuple[tuple, tuple, tuple]:
    """Views of Adam's state tensors (exp_avg, exp_avg_sq, step) for `params`, created as
    torch's Adam creates them if absent."""
    state = optimizer.state
    exp_avgs, exp_avg_sqs, steps = [], [], []
    for p in params:
        st = state[p]
        if len(st) == 0:
            st["step"] = torch.tensor(0.0, dtype=torch.float32)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        step = st["step"]
        if step.dtype != torch.float32 or step.numel() != 1:
            raise error("Adam's step must be a float32 scalar tensor")
        exp_avgs.append(flat_view(st["exp_avg"], dtype, error, who))
        exp_avg_sqs.append(flat_view(st["exp_avg_sq"], dtype, error, who))
        steps.append(step.view(1).numpy())
    first = steps[0][0]
    if any(s[0] != first for s in steps):
        raise error("Adam's step counts differ between the tensors")
    return tuple(exp_avgs), tuple(exp_avg_sqs), tuple(steps)
