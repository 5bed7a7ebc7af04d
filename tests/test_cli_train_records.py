"""`earlyphase train` never overwrites a different configuration's record, and names stay inside --out."""

import json

import pytest

from earlyphase.cli import main
from empirical_helpers import (
    ONE_STEP_TRAIN,
    single_thread,  # noqa: F401 (autouse fixture)
)

ARGS = [*ONE_STEP_TRAIN, "--batch-size", "8", "--json"]


def _record(capsys):
    return json.loads(capsys.readouterr().out)["record"]


def test_settings_outside_the_old_name_give_different_default_names(tmp_path, capsys):
    main([*ARGS, "--out", str(tmp_path)])
    first = _record(capsys)
    main([*ARGS, "--out", str(tmp_path), "--steps", "2"])  # steps were not part of the old name
    second = _record(capsys)
    main([*ARGS, "--out", str(tmp_path), "--loss", "cross_entropy"])
    third = _record(capsys)
    assert len({first, second, third}) == 3
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_same_name_different_configuration_is_refused_unless_overwrite(tmp_path, capsys):
    main([*ARGS, "--out", str(tmp_path), "--name", "mine"])
    before = (tmp_path / "mine.json").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*ARGS, "--out", str(tmp_path), "--name", "mine", "--steps", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--overwrite" in err and "steps" in err
    assert (tmp_path / "mine.json").read_text() == before
    main([*ARGS, "--out", str(tmp_path), "--name", "mine", "--steps", "2", "--overwrite"])
    assert json.loads((tmp_path / "mine.json").read_text())["config"]["steps"] == 2


def test_same_configuration_may_be_rerun_into_its_record(tmp_path, capsys):
    main([*ARGS, "--out", str(tmp_path), "--name", "mine"])
    assert main([*ARGS, "--out", str(tmp_path), "--name", "mine"]) == 0


@pytest.mark.parametrize("name", ["../../x", "../x", "/tmp/x", "a/b", ".."])
def test_names_are_confined_to_out(tmp_path, capsys, name):
    with pytest.raises(SystemExit) as exit_info:
        main([*ARGS, "--out", str(tmp_path / "out"), "--name", name])
    assert exit_info.value.code == 2 and "--name" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.json"))
