import pytest

from earlyphase.core.validate import require_choice, require_int, require_positive


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
