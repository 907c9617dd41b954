"""Reliability harness for Python background work: native FastAPI BackgroundTasks vs Hatchet.

Modules, named for what they hold: ``ledger`` (ground truth), ``history`` (its records),
``checker`` (classification), ``faults`` (nemesis), ``schedule`` (when faults happen), ``load``
(clients), ``loadgen`` (the Locust side: locustfile and shapes), ``capacity`` (knees of a rising
load), ``stack``/``services``/``procs``/``links`` (processes and network), ``scenario`` and
``runner`` (experiments), ``results``/``report`` (outputs), ``cli`` and ``pytest_plugin``.
"""

__version__ = "0.1.0"
