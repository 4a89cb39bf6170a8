import torch

from engine.config import RunConfig
from engine.model import FrequencyLSTM, build_model


def test_parameter_count_is_the_handoffs_18241():
    assert FrequencyLSTM().n_parameters() == 18_241
    assert build_model(RunConfig()).n_parameters() == 18_241


def test_interchange_names_load_into_plain_modules():
    m = build_model(RunConfig())
    sd = m.state_dict()
    assert {k.split(".")[0] for k in sd} == {"lstm", "fc"}
    lstm, fc = torch.nn.LSTM(5, 64, 1, batch_first=True), torch.nn.Linear(64, 1)
    lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
    fc.load_state_dict({k[3:]: v for k, v in sd.items() if k.startswith("fc.")})
    x = torch.randn(2, 7, 5)
    y, _ = m(x, m.init_hidden(2))
    out, _ = lstm(x)
    torch.testing.assert_close(y, fc(out))


def test_explicit_state_passing_shapes():
    m = FrequencyLSTM()
    h, c = m.init_hidden(3)
    assert h.shape == c.shape == (1, 3, 64) and not h.any()
    y, (h2, c2) = m(torch.zeros(3, 1, 5), (h, c))
    assert y.shape == (3, 1, 1) and h2.shape == (1, 3, 64)


def test_build_model_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = build_model(RunConfig(torch_seed=5)), build_model(RunConfig(torch_seed=5))
    assert torch.equal(torch.random.get_rng_state(), before)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    c = build_model(RunConfig(torch_seed=6))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
