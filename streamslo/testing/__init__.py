"""Support code shared by the tests (``tests/``) and the benchmarks (``bench/``).

Installed with the project (like ``aiohttp.test_utils``), so ``python bench/x.py``
imports it without touching ``sys.path``. Nothing here imports pytest.

- :mod:`~streamslo.testing.ports`: free ports and HTTP readiness of a child process;
- :mod:`~streamslo.testing.kafka`: a real single-node KRaft broker (``scripts/kafka.py`` is its CLI);
- :mod:`~streamslo.testing.stream`: topics, producing beacons, ``streamslo worker`` and
  ``streamslo collector`` subprocesses, ``/metrics`` samples;
- :mod:`~streamslo.testing.beacons`: beacon builders (Kafka records and public v1 bodies);
- :mod:`~streamslo.testing.prometheus`: Prometheus / Alertmanager processes;
- :mod:`~streamslo.testing.otlp_sink`: a local OTLP/HTTP trace receiver.
"""
