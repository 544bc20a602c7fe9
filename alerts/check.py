"""``klankkast-alerts check``: would ``klankkast-alerts`` start, and reach what it needs?

It validates what a start validates -- the whole configuration and the rules, then
builds the same clients, which reads the MQTT and InfluxDB secret files and the TLS
files -- and then connects: InfluxDB is pinged, its layout ensured, a point written
to ``ingest_stats`` and read back (the checks of ``klankkast-ingest check``); the
broker is connected to with the alerts' own credentials (clean start, no session
kept) and the alerts' subscriptions are made, so a refused login (and, on a broker
that refuses subscriptions it will not serve, a missing read right) is named.
Mosquitto 2.0 grants any subscription and filters at delivery, so there a missing
read right shows only as silence: the check listens two seconds for the nodes'
retained status messages, counts them in its OK line, and when none arrives says so
in a note (no node has reported yet, or the user may not read them) -- still exit 0,
as a broker without nodes is not an error. Webhooks are not called (a test alert
would wake people up).

Exit status: 0 OK; 1 a configuration error or a failed check; 2 bad usage.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from klankkast.ingest.errors import ConfigError

if TYPE_CHECKING:
    from klankkast.alerts.service import AlertsConfig
    from klankkast.ingest.config import CentralConfig, MqttConfig

__all__ = ["check"]


#: how long the check listens for the nodes' retained status messages
LISTEN_S = 2.0


def _check_mqtt(
    client: Any, mcfg: MqttConfig, topics: list[str], timeout_s: float
) -> tuple[list[str], set[str]]:
    """The problems of reaching the broker as the alerts' user, and the topics of the
    retained node status messages it was sent (none: no node yet, or no read right)."""
    from klankkast.mqttprobe import probe_mqtt

    result, problems = probe_mqtt(
        client, mcfg.host, mcfg.port, mcfg.url, topics, timeout_s, listen_s=LISTEN_S
    )
    rc = result.get("connect")
    if rc is not None and rc.is_failure:
        problems.append(
            f"mqtt: {mcfg.url} refused the login of user {mcfg.username!r}: {rc} "
            "(check [alerts] username / password_file, or [mqtt])"
        )
    for topic, code in zip(topics, result.get("suback", []), strict=False):
        if code.is_failure:
            problems.append(
                f"mqtt: user {mcfg.username!r} is not authorised to read {topic}: {code} "
                "(the broker's ACL: topic read klankkast/v1/#)"
            )
    return problems, {t for t in result["messages"] if t.endswith("/status")}


def _no_status_note(mcfg: MqttConfig) -> str:
    return (
        f"klankkast-alerts: note: no retained node status arrived within {LISTEN_S:g} s: "
        f"either no node has reported to {mcfg.url} yet, or user {mcfg.username!r} may not "
        "read klankkast/v1/+/+/status (Mosquitto 2.0 grants the subscription and filters "
        "at delivery; the broker's ACL needs: topic read klankkast/v1/#)"
    )


def check(central: CentralConfig, acfg: AlertsConfig, timeout_s: float = 10.0) -> int:
    """Build the clients a start builds, connect, print what is wrong; exit status."""
    from klankkast.alerts.service import mqtt_config, secret_error, subscriptions
    from klankkast.ingest.cli import check_influx
    from klankkast.ingest.config import default_client_id, make_influx_client, make_mqtt_client

    mcfg = mqtt_config(central, acfg)
    cid = acfg.client_id or default_client_id("klankkast-alerts")
    try:
        client = make_mqtt_client(mcfg, client_id=f"{cid}-check"[:64])
        if acfg.influx:
            make_influx_client(central.influxdb).close()
    except ConfigError as err:
        print(f"klankkast-alerts: {secret_error(err, acfg)}", file=sys.stderr)
        return 1
    problems = check_influx(central) if acfg.influx else []
    mqtt_problems, heard = _check_mqtt(client, mcfg, subscriptions(acfg), timeout_s)
    problems += mqtt_problems
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    if not heard:
        print(_no_status_note(mcfg), file=sys.stderr)
    influx = f", influxdb {central.influxdb.url}/{central.influxdb.database}" if acfg.influx else ""
    print(
        f"klankkast-alerts: check OK: mqtt {mcfg.url} as {mcfg.username or 'anonymous'}{influx}; "
        f"{len(acfg.webhooks)} webhook(s) (not called), confirm_s={acfg.settings.confirm_s}, "
        f"frames={acfg.frames}; read the retained status of {len(heard)} node(s)"
    )
    return 0
