import pytest

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.training import method_names


def test_defaults_are_the_spec():
    c = RunConfig().validated()
    assert c.frequencies == (1.0, 3.0, 5.0, 7.0)
    assert (c.fs, c.n_samples, c.rows_per_set) == (1000.0, 10_000, 40_000)
    assert (c.amp_low, c.amp_high, c.phase_scale) == (0.8, 1.2, 1.0)
    assert (c.train_seed, c.test_seed, c.hidden_size, c.num_layers) == (1, 2, 64, 1)


def test_handoff_is_one_flag_away_with_the_handoffs_own_settings():
    h = RunConfig().replace(method="handoff")
    assert (h.lr, h.clip, h.epochs) == (1e-3, 0.0, 1)
    assert RunConfig(method="handoff", lr=5e-3).lr == 5e-3  # explicit values win
    assert RunConfig().replace(method="handoff", epochs=3).epochs == 3


@pytest.mark.parametrize("method", method_names())
def test_every_method_default_round_trips(method):
    c = RunConfig(method=method).validated()
    assert RunConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"fs": 10.0}, "Nyquist"),
        ({"lr": -1.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"phase_scale": float("nan")}, "phase-scale"),
        ({"test_seed": 1}, "seeds"),
        ({"method": "nope"}, "unknown method"),
        ({"backend": "gpu"}, "backend"),
        ({"amp_low": 1.5}, "amplitude"),
    ],
)
def test_validation_names_the_bad_field(changes, words):
    with pytest.raises(FreqtuiError, match=words):
        RunConfig(**changes).validated()


def test_every_trainer_has_one_torch_free_declaration_and_every_declaration_a_trainer():
    """engine/methods.py declares each method once (help, `freqtui methods` and option
    checks read it without torch); engine/training/ runs each with those options."""
    from engine.config import registered_methods
    from engine.training import get_method

    assert {m.name for m in registered_methods()} == set(method_names())
    for m in registered_methods():
        assert get_method(m.name).spec is m


@pytest.mark.parametrize(
    "changes, own, flag",
    [
        ({"hidden_size": 10**6}, "hidden-size must be in 1..512", "--hidden must be in 1..512"),
        ({"torch_seed": -1}, "torch-seed must be an integer with 0 <= seed", "--seed must be"),
        ({"lr": float("inf")}, "lr must be a finite number", "--lr must be a finite number"),
        ({"clip": -1.0}, "clip must be >= 0 (0 = off)", "--clip must be >= 0"),
    ],
)
def test_a_bad_field_is_named_by_the_callers_word_for_it_else_by_its_own(changes, own, flag):
    """The engine names a field itself (a file's config); the CLI passes its flags."""
    config = RunConfig(**changes)
    with pytest.raises(FreqtuiError) as err:
        config.validated()
    assert str(err.value).startswith(own)
    names = {"hidden_size": "--hidden", "torch_seed": "--seed", "lr": "--lr", "clip": "--clip"}
    with pytest.raises(FreqtuiError) as err:
        config.validated(names)
    assert str(err.value).startswith(flag)


def test_a_size_bound_takes_its_edge_and_refuses_just_past_it():
    from engine import config as c

    for field, ok, bad in [
        ("hidden_size", c.MAX_HIDDEN, c.MAX_HIDDEN + 1),
        ("num_layers", c.MAX_LAYERS, c.MAX_LAYERS + 1),
        ("epochs", 1, 0),
        ("lr", c.MAX_LR, c.MAX_LR * 1.01),
    ]:
        config = RunConfig(duration=0.05, **{field: ok})
        assert config.validated() is config
        with pytest.raises(FreqtuiError, match=field.replace("_", "-")):
            RunConfig(duration=0.05, **{field: bad}).validated()
