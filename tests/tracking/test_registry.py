"""Alias writes survive another search writing the same alias at the same moment."""

import pytest
from mlflow.exceptions import MlflowException

from safetune.tracking import registry


class RacingClient:
    """Fails the first ``races`` writes the way PostgreSQL reports a lost INSERT race."""

    def __init__(self, races: int, message: str = 'duplicate key value violates unique constraint "registered_model_alias_pk"'):
        self.races, self.message, self.calls, self.aliases = races, message, 0, {}

    def set_registered_model_alias(self, name, alias, version):
        self.calls += 1
        if self.races:
            self.races -= 1
            raise MlflowException(self.message)
        self.aliases[alias] = version


def test_a_lost_insert_race_is_retried_until_the_alias_is_set(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    client = RacingClient(races=2)
    registry.set_aliases("safetune-x", {"champion": "3", "safest": "1"}, client=client)
    assert client.aliases == {"champion": "3", "safest": "1"} and client.calls == 4


def test_other_errors_are_not_retried(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    client = RacingClient(races=1, message="RESOURCE_DOES_NOT_EXIST: no model version 9")
    with pytest.raises(MlflowException, match="no model version"):
        registry.set_aliases("safetune-x", {"champion": "9"}, client=client)
    assert client.calls == 1


def test_a_race_that_never_ends_still_fails(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    client = RacingClient(races=99)
    with pytest.raises(MlflowException, match="duplicate key"):
        registry.set_aliases("safetune-x", {"champion": "1"}, client=client, attempts=3)
    assert client.calls == 3


def test_an_identical_configuration_keeps_its_registered_version(tmp_path):
    """Re-running a search must not add identical copies to the registry; a new knob value must."""
    from types import SimpleNamespace

    import mlflow
    from mlflow.tracking import MlflowClient

    from safetune.config import DecodingConfig

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        ref = SimpleNamespace(name="tiny", model_id="/models/tiny", revision=None)
        config, other = DecodingConfig(temperature=0.7), DecodingConfig(temperature=0.9)
        # Activate an experiment of this store: the process may hold another test's active experiment.
        client = MlflowClient()
        experiment = mlflow.set_experiment("registry-reuse").experiment_id
        runs = [client.create_run(experiment).info.run_id for _ in range(3)]
        first = registry.log_configuration_model(runs[0], ref, config, 0, "safetune-tiny")
        again = registry.log_configuration_model(runs[1], ref, config, 0, "safetune-tiny")
        changed = registry.log_configuration_model(runs[2], ref, other, 0, "safetune-tiny")
        assert again == first and changed != first
        assert len(client.search_model_versions("name = 'safetune-tiny'")) == 2
        assert client.get_run(runs[1]).data.tags["safetune.registered_version"] == first
        assert client.get_model_version("safetune-tiny", first).run_id == runs[0]
    finally:
        mlflow.set_tracking_uri(previous)
