"""Grafana provisioning files: the Prometheus datasource and the dashboards folder.

Use :func:`files` to get ``{relative path: document}`` under
``grafana/provisioning/``. The datasource uid matches the one every generated
panel uses, so the dashboards work as provisioned.

>>> sorted(files("http://localhost:9090"))
['dashboards/streamslo.yml', 'datasources/streamslo.yml']
"""

from __future__ import annotations

from typing import Any

from dashboards.panels import DATASOURCE_UID

__all__ = ["DASHBOARDS_PATH", "files"]

# Where the provisioned dashboards are mounted in the Grafana container/host.
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/streamslo"


def files(prometheus_url: str, dashboards_path: str = DASHBOARDS_PATH) -> dict[str, dict[str, Any]]:
    datasource = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "streamslo Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
            }
        ],
    }
    dashboards = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "streamslo",
                "folder": "streamslo",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }
    return {"dashboards/streamslo.yml": dashboards, "datasources/streamslo.yml": datasource}
