"""Alertmanager configuration: ``page`` to PagerDuty Events API v2, ``ticket`` to a webhook.

Use :func:`config` to get the ``alertmanager.yml`` document. Alerts are grouped
by alert name, SLO and region (one incident per SLO per region), and a page
inhibits the ticket of the same SLO and region: the fast tiers already woke
someone, the slow tiers' ticket would be noise.

>>> config()["route"]["group_by"]
['alertname', 'slo', 'region']
"""

from __future__ import annotations

from typing import Any

from slo import conventions as c

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "RECEIVER_PAGE",
    "RECEIVER_TICKET",
    "ROUTING_KEY_FILE",
    "TICKET_WEBHOOK_URL",
    "config",
]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ROUTING_KEY_FILE = "/etc/alertmanager/pagerduty_routing_key"
TICKET_WEBHOOK_URL = "http://127.0.0.1:9096/streamslo/tickets"
RECEIVER_PAGE = "pagerduty-page"
RECEIVER_TICKET = "ticket-webhook"
GROUP_BY = ["alertname", c.LABEL_SLO, c.LABEL_REGION]


def _matcher(label: str, value: str) -> str:
    return f'{label}="{value}"'


def config(
    pagerduty_url: str = PAGERDUTY_EVENTS_URL,
    routing_key_file: str = ROUTING_KEY_FILE,
    ticket_webhook_url: str = TICKET_WEBHOOK_URL,
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
) -> dict[str, Any]:
    """The whole ``alertmanager.yml`` document."""
    page = _matcher(c.LABEL_SEVERITY, c.SEVERITY_PAGE)
    ticket = _matcher(c.LABEL_SEVERITY, c.SEVERITY_TICKET)
    return {
        "global": {"resolve_timeout": "5m", "pagerduty_url": pagerduty_url},
        "route": {
            "receiver": RECEIVER_TICKET,
            "group_by": list(GROUP_BY),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": [
                {"receiver": RECEIVER_PAGE, "matchers": [page]},
                {"receiver": RECEIVER_TICKET, "matchers": [ticket]},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": [page],
                "target_matchers": [ticket],
                "equal": [c.LABEL_SLO, c.LABEL_REGION],
            }
        ],
        "receivers": [
            {
                "name": RECEIVER_PAGE,
                "pagerduty_configs": [
                    {
                        "routing_key_file": routing_key_file,
                        "send_resolved": True,
                        # PagerDuty v2 wants critical/error/warning/info, not our
                        # severity label value.
                        "severity": "critical",
                        "source": "{{ .CommonLabels.region }}",
                        "component": "{{ .CommonLabels.slo }}{{ .CommonLabels.trigger }}",
                        "group": "{{ .CommonLabels.region }}",
                        "class": "{{ .CommonLabels.alertname }}",
                        "description": '{{ range .Alerts }}{{ .Annotations.summary }} {{ end }}',
                        "details": {
                            "firing": '{{ template "pagerduty.default.instances" .Alerts.Firing }}',
                            "resolved": '{{ template "pagerduty.default.instances" .Alerts.Resolved }}',
                            "runbook_url": "{{ .CommonAnnotations.runbook_url }}",
                            "tier": "{{ .CommonLabels.tier }}",
                        },
                    }
                ],
            },
            {
                "name": RECEIVER_TICKET,
                "webhook_configs": [{"url": ticket_webhook_url, "send_resolved": True}],
            },
        ],
    }
