"""The committed models/ snapshots: recomputed here from the files, frozen, by the
evaluation protocol, against issue 6's goals."""

from pathlib import Path

from engine.evaluation import evaluate
from engine.store.files import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_the_task_as_written_is_learned_below_the_public_floor():
    config, model = load_model(MODELS / "clock_phase1.0.pt")
    assert config.phase_scale == 1.0 and config.hidden_size == 64 and config.num_layers == 1
    assert model.n_parameters() == 18_241
    result = evaluate(model, config)
    assert result.test.overall <= 0.05
    assert abs(result.train.overall - result.test.overall) <= 0.2 * result.test.overall
    assert max(result.test.per_block) < 0.5  # every frequency, not just the average


def test_the_weakened_variant_is_ten_times_below_the_best_public_result():
    config, model = load_model(MODELS / "clock_phase0.01.pt")
    assert config.phase_scale == 0.01
    result = evaluate(model, config)
    assert result.test.overall <= 0.002  # best public 0.025, band-pass 0.023 (SPEC §4.3)
    assert abs(result.train.overall - result.test.overall) <= 0.2 * result.test.overall


def test_the_default_command_of_the_current_clock_seed_0():
    """`freqtui train --headless --autosave 0 --seed 0` (the clock's slide gated at 0.005,
    then S, then its polish; seed 0 ended at 0.7193 with the first schedule, 0.00155
    with the slide gated at 0.04): frozen MSE_test 0.00055 here, every frequency below
    0.001, train within 10% of test, and the snapshot says which weights it holds (chosen
    on the validation draw, never on the test set)."""
    from engine.store.files import read_file, weights_note

    path = MODELS / "clock_phase1.0_seed0.pt"
    obj = read_file(path)
    config, model = load_model(path)
    assert config.torch_seed == 0 and config.method == "clock" and config.phase_scale == 1.0
    result = evaluate(model, config)
    assert result.test.overall <= 0.001 and max(result.test.per_block) <= 0.001
    assert abs(result.train.overall - result.test.overall) <= 0.1 * result.test.overall
    assert "validation draw" in weights_note(obj)


def test_the_weakened_variant_at_0_001_chosen_on_the_validation_draw():
    """`freqtui sweep --grid phase-scale=1,0.1,0.01 --seeds 0-4`, its phase-scale 0.01 cell
    with seed 3: the one of the five seeds with the least frozen MSE on the validation draw
    (noise seed 3; never the test set). Frozen MSE_test 0.00094 here, the held-out noise
    draws the same, 26 times below the best public result (0.025)."""
    from engine.evaluation import frozen_mse
    from engine.signals import for_config

    config, model = load_model(MODELS / "clock_phase0.01_seed3.pt")
    assert config.phase_scale == 0.01 and config.torch_seed == 3 and config.method == "clock"
    result = evaluate(model, config)
    assert result.test.overall <= 0.001 and max(result.test.per_block) <= 0.0015
    for seed in (777, 4242):  # noise no run trained or selected on
        held = frozen_mse(model, for_config(config, seed)).overall
        assert abs(held - result.test.overall) <= 0.1 * result.test.overall
