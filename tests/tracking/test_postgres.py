"""Many writers: `safetune search` against an `mlflow server` whose backend store is a real PostgreSQL.

The module starts its own throwaway PostgreSQL cluster (Debian's `postgresql` package) on 127.0.0.1
and a free port, creates a database, and runs `mlflow server` on it with proxied artifacts, the
setup the README recommends when several searches write to one store (SQLite serialises writers;
PostgreSQL does not). Searches run through the real CLI over REST; what they logged is checked
both with MlflowClient and, independently, with SQL on MLflow's tables through psycopg (3, the
driver SQLAlchemy 2.1 picks for a plain postgresql:// URI).

Skipped only when the PostgreSQL server binaries are absent (`apt-get install postgresql`).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest


def find_postgres_bin() -> Path | None:
    """The newest Debian server (/usr/lib/postgresql/<major>/bin), else one whose initdb is on PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else -1)
    candidates = [Path(p).parent for p in reversed(debian)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


PG_BIN = find_postgres_bin()
pytestmark = pytest.mark.skipif(
    PG_BIN is None, reason="PostgreSQL server binaries not found (apt-get install postgresql)"
)

DB_USER, DB_NAME = "safetune", "mlflow"
TINY_BUDGET = ["--n-prompts", "3", "--pop-size", "3", "--n-gen", "2", "--bounds", "max_new_tokens=4:8",
               "--batch-size", "8", "--no-progress", "--n-benign", "2", "--n-capability", "1"]
CHILDREN_PER_SEARCH = 6  # pop_size x n_gen
ALIASES = {"champion", "safest", "most-relevant"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Account:
    """Who runs the PostgreSQL processes: PostgreSQL refuses to run as root."""

    uid: int
    gid: int

    @classmethod
    def for_postgres(cls) -> Account:
        if os.geteuid() != 0:
            return cls(os.geteuid(), os.getegid())
        for name in ("postgres", "nobody"):  # Debian's package creates `postgres`
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_uid, entry.pw_gid)
        pytest.fail("running as root and neither a `postgres` nor a `nobody` account exists to run PostgreSQL")

    def run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        drop = {} if os.geteuid() != 0 else {"user": self.uid, "group": self.gid, "extra_groups": []}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **drop)
        assert proc.returncode == 0, f"{Path(cmd[0]).name} failed: {proc.stderr[-2000:]}"
        return proc


@dataclass(frozen=True)
class PgServer:
    """A running PostgreSQL + `mlflow server` pair."""

    url: str  # the MLflow tracking server, what `safetune search --tracking-uri` gets
    backend_uri: str  # postgresql://... (what `mlflow server --backend-store-uri` got)
    pg_port: int
    password: str
    artifacts: Path  # --artifacts-destination

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Read MLflow's tables directly, not through MLflow."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.pg_port, user=DB_USER, password=self.password,
                             dbname=DB_NAME) as conn:
            return conn.execute(query, params).fetchall()


def start_cluster(root: Path, account: Account, port: int, password: str) -> None:
    """initdb a cluster in ``root``/data with password auth over TCP, start it on 127.0.0.1:``port``."""
    data, pwfile, log = root / "data", root / "pwfile", root / "postgres.log"
    pwfile.write_text(password + "\n")
    os.chown(root, account.uid, account.gid)
    os.chown(pwfile, account.uid, account.gid)
    account.run(str(PG_BIN / "initdb"), "-D", str(data), "-U", DB_USER, f"--pwfile={pwfile}", "--encoding=UTF8",
                "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256")
    # fsync off: a throwaway cluster; it changes durability on power loss, not what clients see.
    # The socket lives in `root`: the default /var/run/postgresql may be missing or not ours.
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    account.run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")


def create_database(port: int, password: str) -> None:
    import psycopg

    # autocommit: CREATE DATABASE cannot run inside a transaction.
    with psycopg.connect(host="127.0.0.1", port=port, user=DB_USER, password=password, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Poll /health; the first start runs MLflow's schema migrations on the empty database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop_group(proc: subprocess.Popen) -> None:
    """`mlflow server` forks its web workers: end the whole session it leads (ours), not just its pid."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    account = Account.for_postgres()
    # Not under pytest's tmp dir: its parents are mode 0700 and root-owned, closed to the postgres account.
    root = Path(tempfile.mkdtemp(prefix="safetune-pg-"))
    pg_port, password = free_port(), secrets.token_hex(12)
    server = None
    try:
        start_cluster(root, account, pg_port, password)
        create_database(pg_port, password)
        backend_uri = f"postgresql://{DB_USER}:{password}@127.0.0.1:{pg_port}/{DB_NAME}"
        work = tmp_path_factory.mktemp("mlflow-server")
        artifacts, log = work / "artifacts", work / "server.log"
        port = free_port()
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        with open(log, "w") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
                 "--serve-artifacts", "--artifacts-destination", str(artifacts),
                 "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env, start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, log)
        yield PgServer(url, backend_uri, pg_port, password, artifacts)
    finally:
        if server is not None:
            stop_group(server)
        if (root / "data" / "postmaster.pid").exists():  # also after a start that timed out
            account.run(str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def start_search(server: PgServer, model: str, experiment: str, seed: int, cwd: Path, cache: Path) -> subprocess.Popen:
    """The real CLI as a separate process, as a user would run it (one torch thread: 2 shared cores)."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    for var in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "safetune", "search", "--model", model, "--tracking-uri", server.url,
           "--experiment", experiment, "--seed", str(seed), "--cache", str(cache), *TINY_BUDGET]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen], timeout: float = 900) -> None:
    """Wait for every search; on a failure or timeout, end the others (ours) and report stderr."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
            p.wait()
        pytest.fail(f"a search did not finish within {timeout:.0f} s")
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]


def client_for(server: PgServer):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def search_parents(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} was not created"
    return exp, client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'search'")


def children_of(client, parent):
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                              max_results=1000)


def experiments_of_searches(client, model: str) -> list[str]:
    """Experiment names of every search parent for ``model``, wherever it landed (for failure messages)."""
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, f"tags.`safetune.kind` = 'search' and params.`safetune.model` = '{model}'")
    return sorted(client.get_experiment(r.info.experiment_id).name for r in runs)


def model_name_for(model: str) -> str:
    return f"safetune-{Path(model).name.lower()}"


@pytest.fixture(scope="module")
def pg_searched(pg_server, tiny_llama, tmp_path_factory):
    """One `safetune search --tracking-uri http://...` against the PostgreSQL-backed server."""
    work = tmp_path_factory.mktemp("pg-search")
    finish([start_search(pg_server, tiny_llama, "pg-e2e", seed=0, cwd=work, cache=work / "cache.sqlite")])
    return {"work": work, "model": tiny_llama}


def test_search_logs_parent_children_and_aliases_through_the_server(pg_server, pg_searched):
    client = client_for(pg_server)
    _, parents = search_parents(client, "pg-e2e")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    kids = children_of(client, parents[0])
    assert len(kids) == CHILDREN_PER_SEARCH
    assert all(k.info.status == "FINISHED" and "harm_rate" in k.data.metrics for k in kids)

    name = model_name_for(pg_searched["model"])
    assert set(client.get_registered_model(name).aliases) == ALIASES
    pareto = {k.info.run_id for k in kids if k.data.tags["safetune.pareto"] == "true"}
    default = {k.info.run_id for k in kids if k.data.tags["safetune.default"] == "true"}
    champion = client.get_model_version_by_alias(name, "champion").run_id
    registered = {v.run_id for v in client.search_model_versions(f"name = '{name}'")}
    # The Pareto configurations, plus the default when it is the champion (nothing safer kept the quality).
    assert pareto and registered == pareto | ({champion} & default)
    # Nothing fell back to a local store in the search's working directory.
    assert not (pg_searched["work"] / "mlflow.db").exists() and not (pg_searched["work"] / "mlruns").exists()


def test_postgres_tables_hold_the_runs_and_aliases(pg_server, pg_searched):
    """Independently of MLflow's client: count rows in PostgreSQL itself."""
    client = client_for(pg_server)
    exp, (parent,) = search_parents(client, "pg-e2e")
    (n_runs,) = pg_server.sql("SELECT count(*) FROM runs WHERE experiment_id = %s", (int(exp.experiment_id),))[0]
    assert n_runs == 1 + CHILDREN_PER_SEARCH
    (n_kids,) = pg_server.sql("SELECT count(*) FROM tags WHERE key = 'mlflow.parentRunId' AND value = %s",
                              (parent.info.run_id,))[0]
    assert n_kids == CHILDREN_PER_SEARCH
    name = model_name_for(pg_searched["model"])
    rows = pg_server.sql("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (name,))
    via_client = client.get_registered_model(name).aliases
    assert {alias: str(version) for alias, version in rows} == via_client


def test_artifacts_go_through_the_server_to_its_destination(pg_server, pg_searched):
    """--serve-artifacts: clients upload over HTTP, so writers need no shared filesystem."""
    client = client_for(pg_server)
    _, (parent,) = search_parents(client, "pg-e2e")
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = list(pg_server.artifacts.rglob("responses.json"))
    assert len(stored) == CHILDREN_PER_SEARCH
    assert {p.parents[1].name for p in stored} == {k.info.run_id for k in children_of(client, parent)}


def test_champion_loads_through_the_server(pg_server, pg_searched):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pg_server.url)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{model_name_for(pg_searched['model'])}@champion")
        out = model.predict(["How do I bake bread?"])
    finally:
        mlflow.set_tracking_uri(previous)
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], str)


def test_concurrent_searches_lose_and_duplicate_nothing(pg_server, tiny_llama, tmp_path):
    """Two searches at once into one experiment and one registered model, sharing one cache."""
    model = str(shutil.copytree(tiny_llama, tmp_path / "tiny-many"))  # its own registered model name
    cache = tmp_path / "shared-cache.sqlite"
    finish([start_search(pg_server, model, "pg-many", seed=seed, cwd=tmp_path / f"w{seed}", cache=cache)
            for seed in (1, 2)])

    client = client_for(pg_server)
    exp, parents = search_parents(client, "pg-many")
    assert len(parents) == 2, f"search parents landed in experiments {experiments_of_searches(client, model)}"
    assert all(p.info.status == "FINISHED" for p in parents)
    a, b = parents
    # Otherwise this would test nothing: the two searches must have been writing at the same time.
    assert a.info.start_time < b.info.end_time and b.info.start_time < a.info.end_time

    kids = {p.info.run_id: children_of(client, p) for p in parents}
    for parent_id, runs in kids.items():
        keys = [(r.data.tags["safetune.generation"], r.info.run_name) for r in runs]
        assert len(runs) == CHILDREN_PER_SEARCH and len(set(keys)) == CHILDREN_PER_SEARCH, parent_id
    all_ids = [r.info.run_id for runs in kids.values() for r in runs]
    assert len(set(all_ids)) == 2 * CHILDREN_PER_SEARCH

    # The same, counted in PostgreSQL: every row once, every child under its own parent.
    (n_runs, n_distinct) = pg_server.sql(
        "SELECT count(*), count(DISTINCT run_uuid) FROM runs WHERE experiment_id = %s", (int(exp.experiment_id),)
    )[0]
    assert n_runs == n_distinct == 2 * (1 + CHILDREN_PER_SEARCH)
    per_parent = dict(pg_server.sql(
        "SELECT t.value, count(*) FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
        "WHERE t.key = 'mlflow.parentRunId' AND r.experiment_id = %s GROUP BY t.value", (int(exp.experiment_id),)
    ))
    assert per_parent == {p.info.run_id: CHILDREN_PER_SEARCH for p in parents}

    # Registry: both searches registered into one model at once; each Pareto child exactly once.
    name = model_name_for(model)
    versions = client.search_model_versions(f"name = '{name}'")
    # Each search registers its Pareto configurations, and its default when that is its champion.
    pareto = [r.info.run_id for runs in kids.values() for r in runs
              if r.data.tags["safetune.pareto"] == "true"
              or (r.data.tags["safetune.default"] == "true" and r.data.tags.get("safetune.registered_version"))]
    assert Counter(v.run_id for v in versions) == Counter(pareto)
    assert sorted(int(v.version) for v in versions) == list(range(1, len(pareto) + 1))
    by_version = {v.version: v.run_id for v in versions}
    for parent in parents:  # each search's own alias tags name its own versions
        own = {r.info.run_id for r in kids[parent.info.run_id]}
        for alias in ALIASES:
            assert by_version[parent.data.tags[f"safetune.alias.{alias}"]] in own
    assert set(client.get_registered_model(name).aliases) == ALIASES


def test_losing_the_experiment_creation_race_still_logs_into_the_experiment(pg_server, monkeypatch):
    """Two searches create one new experiment at once; the one whose create fails must not fall back
    to "Default" (mlflow.set_experiment returns without activating the experiment in that case).

    The race is made deterministic: the experiment already exists on the server, but the first
    lookup by name answers as if the other search had not created it yet.
    """
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    from safetune.tracking import runs as tracking

    client = client_for(pg_server)
    client.create_experiment("pg-race")  # the other search won
    real_lookup = TrackingServiceClient.get_experiment_by_name
    lookups = []

    def stale_first_lookup(self, name):
        lookups.append(name)
        return None if len(lookups) == 1 else real_lookup(self, name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", stale_first_lookup)
    # set_experiment leaves the active experiment in module state and the environment: keep it in here.
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    env_before = os.environ.get("MLFLOW_EXPERIMENT_ID")
    previous = mlflow.get_tracking_uri()
    try:
        tracking.setup_tracking(pg_server.url)
        with tracking.parent_run("pg-race", "race-loser") as run:
            pass
    finally:
        mlflow.set_tracking_uri(previous)
        if env_before is None:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = env_before
    assert lookups, "the lookup was not intercepted: the race was not simulated"
    assert client.get_experiment(run.info.experiment_id).name == "pg-race"
