"""The ClientApp: one site's round, by the function notebook 05 writes
(``medlab.federated.site_round``). The site comes from the SuperNode's ``--node-config``
(``partition-id``, ``num-partitions``); data paths travel in the run config."""

from __future__ import annotations

import warnings

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from medlab import federated as fed
from medlab_flower.task import settings, sites

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    warnings.simplefilter("ignore")  # the unofficial-copy warning is in the server's log
    cfg, seed = settings(context.run_config)
    site = int(context.node_config["partition-id"])
    n_sites = int(context.node_config["num-partitions"])
    r = int(msg.content["config"]["server-round"])
    split = sites(context.run_config, n_sites).group("train", site)
    model = fed.init_model(split.n_classes, split.images.shape[1], width=cfg.width, seed=seed)
    glob = msg.content["arrays"].to_torch_state_dict()
    state, n, loss = fed.site_round(model, glob, split, r=r, cfg=cfg, seed=seed, site=site)
    content = RecordDict(
        {"arrays": ArrayRecord(state), "metrics": MetricRecord({"num-examples": n, "loss": loss})}
    )
    return Message(content=content, reply_to=msg)
