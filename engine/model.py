"""FrequencyLSTM: input 5 -> LSTM(64, 1 layer) -> Linear(64, 1), with explicit state passing.

The submodule names `lstm` and `fc` are the interchange format: any plain nn.LSTM plus
nn.Linear can load the weights by `lstm.*` and `fc.*`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Gauges:
    """What the console's hidden-state panel shows of the carried state."""

    h_norm: float
    c_norm: float
    saturated: float
    gate_i: float
    gate_f: float
    gate_o: float


class FrequencyLSTM(nn.Module):
    def __init__(self, input_size: int = 5, hidden_size: int = 64, num_layers: int = 1) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def init_hidden(self, batch: int = 1) -> State:
        """A zero (h, c) for `batch` streams, shaped (layers, batch, hidden)."""
        shape = (self.num_layers, batch, self.hidden_size)
        w = self.fc.weight
        return (
            torch.zeros(shape, dtype=w.dtype, device=w.device),
            torch.zeros(shape, dtype=w.dtype, device=w.device),
        )

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x (batch, L, input) and (h, c) -> y (batch, L, 1) and the new (h, c)."""
        out, state = self.lstm(x, state)
        return self.fc(out), state

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def gauges(self, x: torch.Tensor, state: State) -> Gauges:
        """‖h‖, ‖c‖, the share of saturated units (|h| > 0.95) of the first stream of a
        carried `state`, and the mean i, f, o gates of the first layer's step that took
        input rows `x` (batch, features) and that (h, c) as its previous state."""
        h, c = state
        lstm = self.lstm
        h0, c0 = h[0, 0], c[0, 0]
        g = lstm.weight_ih_l0 @ x[0] + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ h0 + lstm.bias_hh_l0
        i, f, _, o = g.chunk(4)
        return Gauges(
            h_norm=float(h0.norm()),
            c_norm=float(c0.norm()),
            saturated=float((h0.abs() > 0.95).float().mean()),
            gate_i=float(torch.sigmoid(i).mean()),
            gate_f=float(torch.sigmoid(f).mean()),
            gate_o=float(torch.sigmoid(o).mean()),
        )


def build_model(config) -> FrequencyLSTM:
    """A freshly initialised model for a RunConfig, seeded by config.torch_seed."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(config.torch_seed)
    try:
        model = FrequencyLSTM(1 + config.n_blocks, config.hidden_size, config.num_layers)
    finally:
        torch.random.set_rng_state(gen_state)  # seeding the model leaves the caller's RNG alone
    return model
