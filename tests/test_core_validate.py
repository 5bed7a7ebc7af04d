import pickle

import pytest

from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive


def test_messages_name_parameter_and_range():
    with pytest.raises(ValueError, match=r"width must be >= 1"):
        require_int("width", 0, minimum=1)
    with pytest.raises(ValueError, match=r"depth must be an integer"):
        require_int("depth", "three", minimum=2)
    with pytest.raises(ValueError, match=r"c must be a finite number > 0"):
        require_positive("c", -1.0)
    with pytest.raises(ValueError, match=r"model must be one of \['linear', 'uv'\]"):
        require_choice("model", "mlp", {"uv", "linear"})
    assert require_int("seeds", 4.0, minimum=1) == 4


@pytest.mark.parametrize(
    ("check", "name"),
    [
        (lambda: require_int("width", 0, minimum=1), "width"),
        (lambda: require_int("depth", "three"), "depth"),
        (lambda: require_int("seeds", 9, maximum=8), "seeds"),
        (lambda: require_positive("c", float("nan")), "c"),
        (lambda: require_positive("eta", "fast"), "eta"),
        (lambda: require_choice("model", "mlp", {"uv", "linear"}), "model"),
    ],
)
def test_validators_raise_config_error_carrying_the_parameter(check, name):
    with pytest.raises(ConfigError) as error:
        check()
    assert error.value.parameter == name and isinstance(error.value, ValueError)


def test_config_error_keeps_its_parameter_through_pickling():
    """Errors travel back from sweep worker processes by pickling."""
    restored = pickle.loads(pickle.dumps(ConfigError("width must be >= 1, got 0", "width")))
    assert (
        type(restored) is ConfigError and restored.parameter == "width" and str(restored) == "width must be >= 1, got 0"
    )
