"""Small bad inputs: one-line errors naming the parameter and its allowed range."""

import pytest

from earlyphase.cli import main


def _refused(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("x_max", ["nan", "1e9", "2000", "inf", "-1"])
def test_predict_x_max_out_of_range_names_x_max_and_the_range(capsys, x_max):
    err = _refused(capsys, ["predict", "--model", "uv", "--width", "8", "--seeds", "1", "--x-max", x_max])
    assert "x_max" in err and "[0, 20]" in err, err
