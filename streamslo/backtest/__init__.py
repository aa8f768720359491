"""Backtest and calibration: simulate or record traffic, replay it through the engine, report.

``simulate`` / ``scenario`` draw traffic, ``data`` is the replay file format,
``record`` reads it from Kafka, ``replay`` drives stage 1 and stage 2 on the
data's clock, ``timeline`` records each evaluation tick, ``promrate`` is
Prometheus' ``rate()``, ``evaluate`` turns the timeline into firings, failovers
and replicas, ``report`` writes the HTML, ``sweep`` re-decides a grid,
``run`` ties them together and ``cli`` is ``streamslo backtest``
(``docs/backtest.md``).
"""
