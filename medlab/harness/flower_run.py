"""``medlab federate``: notebook 05's FedAvg on Flower's deployment engine, on loopback.

Starts one SuperLink and N SuperNodes on 127.0.0.1 (free ports), runs the Flower app shipped in
``flower_app/`` with ``flwr run`` against a ``$FLWR_HOME/config.toml`` written here (so the CLI
never creates its default simulation federation, which needs Ray), and stops every process it
started, by pid (each in its own process group, which also holds the ServerApp/ClientApp
processes they spawn), also when something fails or times out. Needs the ``flower``
extra (``flwr==1.41.0``; ``pip install -c constraints.txt -e ".[flower]"`` in the checkout).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from medlab import data as D
from medlab.federated import make_sites
from medlab.harness.flower_security import make_certificates, make_node_key
from medlab.utils import check_scalar

__all__ = ["federate", "APP_DIR"]

#: The Flower app (pyproject.toml + medlab_flower/), shipped in the repository.
APP_DIR = Path(__file__).resolve().parents[2] / "flower_app"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exe(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(
            f"{name} not found: install the Flower extra (flwr==1.41.0): in the "
            "repository, pip install -c constraints.txt -e '.[flower]'"
        )
    return found


def _wait_port(port: int, deadline: float, procs: list[subprocess.Popen]) -> None:
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a Flower process exited while starting (see its log)")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} in time")


def _stop(procs: list[subprocess.Popen]) -> None:
    """Terminate each started process group by its leader's pid; kill what is left."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # the group may hold ServerApp/ClientApp children even after the leader exits
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.wait(timeout=5)


def _check_data(dataset: Any, data_dir: Any, n_sites: int) -> None:
    """Load the dataset here, once, before any Flower process starts: an unknown name, a
    missing or damaged file or too few images fails now, with medlab.load's message."""
    if not isinstance(dataset, str):
        raise ValueError(
            f"dataset must be a dataset name such as 'pneumoniamnist', got {dataset!r}"
        )
    (name,) = D.check_names([dataset], param="dataset")
    make_sites(D.load(name, data_dir=data_dir), "iid", n_sites=n_sites)


def _check_security(tls: Any, node_auth: Any) -> None:
    if not isinstance(tls, bool):
        raise TypeError(f"tls must be True or False, got {tls!r} (the CLI's --tls)")
    if not isinstance(node_auth, bool):
        raise TypeError(f"node_auth must be True or False, got {node_auth!r}")
    if node_auth and not tls:
        raise ValueError(
            "node_auth=True needs tls=True: a SuperNode's signed requests are only private "
            "over TLS (the CLI's --node-auth turns --tls on)"
        )


def _toml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def federate(
    *,
    dataset: str = "pneumoniamnist",
    data_dir: str | os.PathLike[str] | None = None,
    n_sites: int = 2,
    rounds: int = 2,
    local_steps: int = 8,
    seed: int = 0,
    width: int = 8,
    timeout: float = 300.0,
    app_dir: str | os.PathLike[str] | None = None,
    tls: bool = False,
    node_auth: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run FedAvg on ``n_sites`` loopback SuperNodes (IID sites of notebook 05, site k =
    ``partition-id=k``); returns the ServerApp's result: ``acc`` (final global test accuracy),
    ``curve`` ([round, acc] pairs), ``seconds`` (ServerApp time), ``state`` (the first values
    of each final tensor) and ``wall_s`` (the whole run, processes included).

    ``tls``: TLS to the SuperLink, with a throwaway authority (:func:`make_certificates`), as
    across machines (docs/federation.md). ``node_auth`` (needs ``tls``): only SuperNodes whose
    keys were registered (``flwr supernode register``, one EC P-384 key pair per site) join.

    Every process is stopped before this returns or raises; ``timeout`` (s) bounds the run.
    """
    n_sites = check_scalar("n_sites", n_sites, lo=2, hi=16, fix="one SuperNode per site")
    rounds = check_scalar("rounds", rounds, lo=1, fix="at least one round, e.g. --rounds 2")
    local_steps = check_scalar(
        "local_steps", local_steps, lo=1, fix="each site takes a step or more, e.g. --local-steps 8"
    )
    seed = check_scalar("seed", seed, lo=0, fix="a non-negative integer, e.g. --seed 0")
    width = check_scalar("width", width, lo=1, fix="e.g. width=8")
    timeout = check_scalar(
        "timeout", timeout, kind=float, lo=0, lo_inclusive=False, fix="seconds, e.g. 300"
    )
    _check_security(tls, node_auth)
    app = Path(app_dir) if app_dir is not None else APP_DIR
    if not (app / "pyproject.toml").exists():
        raise FileNotFoundError(f"no Flower app at {app}: pass app_dir=<repo>/flower_app")
    _check_data(dataset, data_dir, n_sites)
    cfg = {"dataset": dataset, "data-dir": str(Path(data_dir).resolve()) if data_dir else ""}
    cfg |= {"seed": seed, "num-server-rounds": rounds, "local-steps": local_steps}
    cfg |= {"width": width, "num-partitions": n_sites}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="medlab-flower-") as tmp:
        fl = _Processes(Path(tmp), app, tls=tls, node_auth=node_auth)
        try:
            out = fl.run(cfg, n_sites=n_sites, deadline=t0 + timeout, timeout=timeout)
            out["wall_s"] = time.monotonic() - t0
            return out
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise RuntimeError(f"medlab federate failed: {exc}\n" + fl.tails()) from exc
            raise
        finally:
            fl.close(verbose)


class _Processes:
    """The Flower processes of one run (in ``home``, a fresh temporary folder), each in its own
    process group and with its own log."""

    def __init__(
        self, home: Path, app: Path, *, tls: bool = False, node_auth: bool = False
    ) -> None:
        self.home, self.app, self.port, self.node_auth = home, app, _free_port(), node_auth
        self.certs = make_certificates(home / "certificates") if tls else None
        secure = (
            f"root-certificates = {_toml(str(self.certs['ca']))}\n"
            if self.certs
            else "insecure = true\n"
        )
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "medlab"\n\n[superlink.medlab]\n'
            f'address = "127.0.0.1:{self.port}"\n' + secure
        )
        env = dict(os.environ, FLWR_HOME=str(home), PYTHONUNBUFFERED="1", MEDLAB_QUIET="1")
        # the SuperLink/SuperNode start their app processes by name: this Python's scripts first
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            [root, str(app.resolve())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        self.env = env
        self.procs: list[subprocess.Popen] = []
        self.logs: list[tuple[str, Any]] = []

    def start(self, cmd: list[str], name: str) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115 - closed by close()
        self.logs.append((name, log))
        p = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=str(self.home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(p)
        return p

    def run(
        self, cfg: dict[str, Any], *, n_sites: int, deadline: float, timeout: float
    ) -> dict[str, Any]:
        """Start the SuperLink and the SuperNodes, run the app; returns the ServerApp's result."""
        port = self.start_superlink(deadline)
        c = self.certs
        node_tls = ["--insecure"] if c is None else ["--root-certificates", str(c["ca"])]
        for k in range(n_sites):
            if self.node_auth:
                key = self.register_node(f"site{k}", timeout=max(1.0, deadline - time.monotonic()))
                node_tls = node_tls[:2] + ["--auth-supernode-private-key", str(key)]
            self.start(
                [_exe("flower-supernode"), *node_tls, "--superlink", f"127.0.0.1:{port}"]
                + ["--host", "127.0.0.1", "--port", str(_free_port())]
                + ["--node-config", f"partition-id={k} num-partitions={n_sites}"],
                f"supernode{k}",
            )
        result = self.home / "result.json"
        cfg = cfg | {"result-path": str(result)}
        run = self.start(
            [_exe("flwr"), "run", str(self.app.resolve()), "medlab", "--stream", "--run-config"]
            + [" ".join(f"{k}={_toml(v)}" for k, v in cfg.items())],
            "flwr-run",
        )
        return _await_result(run, result, deadline, timeout)

    def start_superlink(self, deadline: float) -> int:
        """Start the SuperLink (TLS with this run's certificates, if any) and wait until it
        listens; returns its port."""
        c = self.certs
        link_tls = ["--insecure"]
        if c is not None:
            link_tls = ["--ssl-ca-certfile", str(c["ca"]), "--ssl-certfile", str(c["cert"])]
            link_tls += ["--ssl-keyfile", str(c["key"])]
        if self.node_auth:
            link_tls.append("--enable-supernode-auth")
        self.start(
            [_exe("flower-superlink"), *link_tls, "--disable-runtime-dependency-installation"]
            + ["--host", "127.0.0.1", "--port", str(self.port)],
            "superlink",
        )
        _wait_port(self.port, deadline, self.procs)
        return self.port

    def register_node(self, name: str, *, register: bool = True, timeout: float = 120.0) -> Path:
        """A fresh EC P-384 key pair for one SuperNode (OpenSSH format, in ``keys/``), its public
        key registered with the SuperLink (``flwr supernode register``) unless ``register`` is
        False; returns the private key's path (for ``--auth-supernode-private-key``)."""
        private, public = make_node_key(self.home / "keys", name)
        if register:
            done = subprocess.run(
                [_exe("flwr"), "supernode", "register", str(public), "medlab"],
                env=self.env,
                cwd=str(self.home),
                capture_output=True,
                text=True,
                timeout=timeout,  # within the run's deadline
            )
            if done.returncode != 0:
                raise RuntimeError(f"flwr supernode register failed: {done.stdout}{done.stderr}")
        return private

    def tails(self) -> str:
        """The last lines of every log."""
        tails = []
        for name, log in self.logs:
            log.flush()
            text = (self.home / f"{name}.log").read_text(errors="replace")
            tails.append(f"--- {name}.log (last lines)\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(tails)

    def close(self, verbose: bool) -> None:
        """Stop every process started (by pid) and close the logs."""
        _stop(self.procs)
        for _, log in self.logs:
            log.close()
        if verbose:
            print(f"stopped {len(self.procs)} Flower processes: pids {[p.pid for p in self.procs]}")


def _await_result(
    run: subprocess.Popen, result: Path, deadline: float, timeout: float
) -> dict[str, Any]:
    """The ServerApp's result file, once written (the run may still be ending)."""
    while run.poll() is None and not result.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Flower run did not finish within {timeout:g} s")
        time.sleep(0.5)
    for _ in range(20):  # the ServerApp writes the file, then the run ends
        if result.exists() and result.stat().st_size:
            try:
                return json.loads(result.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.25)
    raise RuntimeError(f"the Flower run ended (exit {run.poll()}) without a result")
