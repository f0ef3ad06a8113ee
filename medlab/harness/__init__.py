"""The reproduce harness: re-executes the curriculum headless and checks every recorded number.

Not part of the teaching library (``import medlab`` loads none of it; the library never imports
it). ``medlab`` (:mod:`~medlab.harness.cli`, arguments in :mod:`~medlab.harness.parser`) runs
``reproduce`` (:mod:`~medlab.harness.reproduce`: :mod:`~medlab.harness.plan` checks the inputs,
:mod:`~medlab.harness.notebooks` runs each notebook into a run folder of
:mod:`~medlab.harness.runs`, :mod:`~medlab.harness.schedule` runs them on one of the
:mod:`~medlab.harness.backends` (here, in :mod:`~medlab.harness.workers`, or on Dask), :mod:`~medlab.harness.compare` judges each number against
:mod:`~medlab.harness.expected` values with :mod:`~medlab.harness.tolerances`,
:mod:`~medlab.harness.update` writes them, :mod:`~medlab.harness.finish` reports and
:mod:`~medlab.harness.site` writes the report page; shared words in
:mod:`~medlab.harness.base`), ``download`` (:mod:`~medlab.harness.kit`, the offline bundle),
``federate`` (:mod:`~medlab.harness.flower_run`) and ``audit`` (the lesson's
:mod:`medlab.audit`). Also here: :mod:`~medlab.harness.monitor` (kernel peak memory),
:mod:`~medlab.harness.speed` (the benchmarks' speed reference), :mod:`~medlab.harness.binder`
(the Jupyter server's kernel manager) and :mod:`~medlab.harness.export` (the notebook export).
"""
