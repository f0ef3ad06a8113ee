"""The ServerApp: Flower's FedAvg (Message API) from notebook 05's seeded initial model; the
global model is evaluated on the whole test split after every round and the accuracies are
written as JSON to the run config's ``result-path``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from medlab import federated as fed
from medlab_flower.task import settings, sites

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    t0 = time.perf_counter()
    rc = context.run_config
    cfg, seed = settings(rc)
    n_sites = int(rc["num-partitions"])
    test = sites(rc, n_sites).test
    model = fed.init_model(test.n_classes, test.images.shape[1], width=cfg.width, seed=seed)
    curve: list[list[float]] = []

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        acc = fed.accuracy(model, test)
        if server_round > 0:
            curve.append([server_round, acc])
        return MetricRecord({"acc": acc})

    strategy = FedAvg(fraction_evaluate=0.0, min_train_nodes=n_sites, min_available_nodes=n_sites)
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=cfg.rounds,
        train_config=ConfigRecord({}),
        evaluate_fn=evaluate,
    )
    final = result.arrays.to_torch_state_dict()
    if str(rc["result-path"]):
        out = {
            "acc": curve[-1][1],
            "curve": curve,
            "seconds": time.perf_counter() - t0,
            "state": {k: v.reshape(-1)[:8].tolist() for k, v in final.items()},
        }
        Path(str(rc["result-path"])).write_text(json.dumps(out))
