"""Re-vendoring finds the shared data folder from an argument, the environment or beside the repo."""

import pytest

from safetune.components.judges.training import vendoring
from safetune.errors import SafetuneError


def test_the_shared_data_folder_is_an_argument_then_the_environment_then_beside_the_repo(tmp_path, monkeypatch):
    monkeypatch.delenv("SAFETUNE_SHARED_DATA", raising=False)
    assert vendoring.shared_data_dir(tmp_path) == tmp_path
    monkeypatch.setenv("SAFETUNE_SHARED_DATA", str(tmp_path))
    assert vendoring.shared_data_dir() == tmp_path
    monkeypatch.delenv("SAFETUNE_SHARED_DATA")
    assert vendoring.REPO.joinpath("safetune", "components", "judges", "training", "vendoring.py").is_file()
    beside = vendoring.REPO.parent / "shared" / "data"
    if beside.is_dir():
        assert vendoring.shared_data_dir() == beside


def test_a_missing_folder_or_file_is_one_line(tmp_path):
    with pytest.raises(SafetuneError, match="shared data folder .* not found") as info:
        vendoring.shared_data_dir(tmp_path / "nope")
    assert "\n" not in str(info.value)
    with pytest.raises(SafetuneError, match="lacks XSTest"):  # checked before anything is copied
        vendoring.vendor_data(tmp_path / "dest", shared_data=tmp_path)
    assert not (tmp_path / "dest").exists()
