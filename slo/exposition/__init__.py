"""Adapters that expose stage 2's snapshots to the outside: Prometheus (:mod:`.prometheus`).

The modules directly under ``slo/`` are pure (no prometheus_client, FastAPI,
Faust or Kafka); this package is where a snapshot meets prometheus_client.
"""

from slo.exposition.prometheus import EngineCollector

__all__ = ["EngineCollector"]
