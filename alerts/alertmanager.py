"""Alertmanager configuration: ``page`` to PagerDuty Events API v2, ``ticket`` to a webhook.

Use :func:`config` to get the ``alertmanager.yml`` document of a spec. Alerts
are grouped by alert name, SLO and region (one incident per SLO per region).
Which alert silences which is the explicit matrix :func:`inhibitions`
(docs/alerting.md, "Inhibition"): every rule names its source and target
alerts by name (trigger alerts by the spec's names) and lists in ``equal``
only labels both sides carry, so two *missing* labels (which Alertmanager
treats as equal) can never pair unrelated alerts.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> config(spec)["route"]["group_by"]
['alertname', 'slo', 'region']
>>> [i.name for i in inhibitions(spec)][1]
'StreamSLORegionFailover (failover moves traffic) silences StreamSLOScaleOut (scale_out adds capacity) in the same region'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.alerting import adds_capacity, moves_traffic, trigger_alert_name
from slo import conventions as c
from slo.model import Spec

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "RECEIVER_PAGE",
    "RECEIVER_TICKET",
    "ROUTING_KEY_FILE",
    "TICKET_WEBHOOK_URL",
    "Inhibition",
    "config",
    "inhibitions",
]

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ROUTING_KEY_FILE = "/etc/alertmanager/pagerduty_routing_key"
TICKET_WEBHOOK_URL = "http://127.0.0.1:9096/streamslo/tickets"
RECEIVER_PAGE = "pagerduty-page"
RECEIVER_TICKET = "ticket-webhook"
GROUP_BY = ["alertname", c.LABEL_SLO, c.LABEL_REGION]


def _matcher(label: str, value: str) -> str:
    return f'{label}="{value}"'


def _burn(severity: str) -> list[str]:
    return [f'alertname=~"{c.ALERT_BURN_RATE}.+"', _matcher(c.LABEL_SEVERITY, severity)]


def _named(alertname: str) -> list[str]:
    return [_matcher("alertname", alertname)]


@dataclass(frozen=True)
class Inhibition:
    """One cell of the matrix that is "silences": source alerts, target alerts, shared labels."""

    name: str
    source: list[str]
    target: list[str]
    equal: list[str]

    def rule(self) -> dict[str, Any]:
        return {"source_matchers": self.source, "target_matchers": self.target, "equal": self.equal}


def inhibitions(spec: Spec) -> list[Inhibition]:
    """The inhibition matrix of ``spec``; every other pair of alerts never silences each other.

    tests/test_alertmanager_inhibition.py checks every cell on a real Alertmanager.
    """
    matrix = [
        Inhibition(
            "a burn page silences the burn ticket of the same SLO and region",
            _burn(c.SEVERITY_PAGE),
            _burn(c.SEVERITY_TICKET),
            [c.LABEL_SLO, c.LABEL_REGION],
        )
    ]
    # Moving a region's viewers away (a Route 53 target) makes adding capacity
    # there (an HPA target) moot.
    triggers = sorted(spec.triggers, key=lambda t: t.name)
    matrix += [
        Inhibition(
            f"{trigger_alert_name(source)} ({source.name} moves traffic) silences "
            f"{trigger_alert_name(target)} ({target.name} adds capacity) in the same region",
            _named(trigger_alert_name(source)),
            _named(trigger_alert_name(target)),
            [c.LABEL_REGION],
        )
        for source in triggers
        if moves_traffic(source)
        for target in triggers
        if adds_capacity(target) and target is not source
    ]
    # A stream falling behind stops every region's rates at once: one cause,
    # one alert (lag has no region label, so it silences every region's).
    matrix.append(
        Inhibition(
            "growing consumer lag silences the no-data tickets of every region",
            _named(c.ALERT_CONSUMER_LAG),
            _named(c.ALERT_NO_DATA),
            [],
        )
    )
    return matrix


def config(
    spec: Spec,
    pagerduty_url: str = PAGERDUTY_EVENTS_URL,
    routing_key_file: str = ROUTING_KEY_FILE,
    ticket_webhook_url: str = TICKET_WEBHOOK_URL,
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
) -> dict[str, Any]:
    """The whole ``alertmanager.yml`` document for ``spec``."""
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
        "inhibit_rules": [inhibition.rule() for inhibition in inhibitions(spec)],
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
