"""Why can this node not reach its broker? One step at a time, each with its own cause.

``klankkast-sensor check`` used to say "no connection ... within 3 s" alike for a
typo in the host name, a stopped broker, a CA file that does not sign the broker's
certificate and a wrong password. :func:`probe_broker` walks the layers in order
and stops at the first that fails, naming it (:data:`CAUSES`):

1. ``name_resolution``: ``getaddrinfo`` of the host;
2. ``refused`` / ``unreachable`` / ``timeout``: the TCP connection to host:port;
3. ``tls_client_cert``: ``cert_file``/``key_file`` cannot be loaded;
   ``tls_verify``: the broker's certificate does not verify against ``ca_file`` (or
   the system CAs) -- the line names the verification error, the CA used and the
   broker certificate's subject and issuer; ``tls``: another handshake failure;
4. ``authentication``: the broker refused the MQTT login (CONNACK reason code);
5. ``not_authorised``: a QoS 1 publish under the node's own topics
   ``klankkast/v1/{site}/{node}/`` was refused (PUBACK reason code, MQTT v5; the
   broker's ACL). The probe publishes one empty, non-retained message to the node's
   ``ack`` topic: the ingest ignores ack topics, and a running node counts it as a
   malformed ack and skips it.

Standard library plus paho-mqtt; connects with clean start and no session kept,
under its own client id, so the node's session is untouched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["CAUSES", "BrokerProbe", "probe_broker"]

CAUSES: Final = (
    "ok", "name_resolution", "refused", "unreachable", "timeout", "tls_client_cert",
    "tls_verify", "tls", "authentication", "not_authorised",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BrokerProbe:
    """The outcome: ``cause`` is one of :data:`CAUSES`; ``detail`` one line for people."""

    cause: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.cause == "ok"


def _name(parts: Any) -> str:
    """``CN=...`` (or the whole RDN sequence) of a decoded certificate name."""
    flat = [f"{k}={v}" for rdn in parts or () for k, v in rdn]
    cns = [x for x in flat if x.startswith("commonName=")]
    return ", ".join(x.replace("commonName=", "CN=") for x in (cns or flat)) or "?"


def _describe_peer(host: str, port: int, timeout_s: float) -> str:
    """Subject, issuer and end date of the certificate the broker presents (unverified).

    Uses ``ssl._ssl._test_decode_cert`` (CPython's decoder, the only one in the
    standard library); where it is missing the description is left out.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return ""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if der is None or decode is None:
        return ""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        info = decode(path)
    except (OSError, ValueError, ssl.SSLError):
        return ""
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return (
        f"; the broker's certificate: subject {_name(info.get('subject'))}, issuer "
        f"{_name(info.get('issuer'))}, valid until {info.get('notAfter', '?')}"
    )


def _tls_step(
    sock: socket.socket,
    host: str,
    port: int,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    timeout_s: float,
) -> BrokerProbe | None:
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        return BrokerProbe("tls_verify", f"ca_file {ca_file!r} cannot be loaded: {err}")
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as err:
            return BrokerProbe(
                "tls_client_cert",
                f"client certificate cert_file {cert_file!r} / key_file {key_file!r} "
                f"cannot be loaded: {err}",
            )
    against = f"ca_file {ca_file!r}" if ca_file else "the system CAs (no ca_file)"
    try:
        with ctx.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as err:
        return BrokerProbe(
            "tls_verify",
            f"TLS verification of {host}:{port} failed: {err.verify_message} (verified "
            f"against {against}{_describe_peer(host, port, timeout_s)})",
        )
    except ssl.SSLError as err:
        hint = (
            " (a client certificate may be required: cert_file, key_file)" if not cert_file else ""
        )
        return BrokerProbe(
            "tls", f"TLS handshake with {host}:{port} failed: {err.reason or err}{hint}"
        )
    except OSError as err:
        return BrokerProbe("tls", f"TLS handshake with {host}:{port} failed: {err}")
    return None


def probe_broker(
    host: str,
    port: int,
    *,
    tls: bool,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    username: str | None = None,
    password: str | None = None,
    client_id: str,
    topic_prefix: str,
    timeout_s: float = 10.0,
) -> BrokerProbe:
    """Walk resolution, TCP, TLS, login and a publish under ``topic_prefix``; see the module."""
    where = f"{host}:{port}"
    # 1. name resolution
    try:
        addrs = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        return BrokerProbe("name_resolution", f"cannot resolve {host!r}: {err.strerror or err}")
    # 2. TCP
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        shown = ", ".join(sorted({str(a[4][0]) for a in addrs}))
        return BrokerProbe(
            "refused", f"{where} ({shown}) refused the connection: nothing listens on that port"
        )
    except TimeoutError:
        return BrokerProbe("timeout", f"no answer from {where} within {timeout_s:g} s (firewall?)")
    except OSError as err:
        return BrokerProbe("unreachable", f"{where} is unreachable: {err.strerror or err}")
    # 3. TLS
    try:
        if tls:
            failed = _tls_step(sock, host, port, ca_file, cert_file, key_file, timeout_s)
            if failed is not None:
                return failed
    finally:
        sock.close()
    # 4. + 5. MQTT login, then one publish under the node's own topics
    return _mqtt_step(
        host, port, tls=tls, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
        username=username, password=password, client_id=client_id,
        topic=f"{topic_prefix.rstrip('/')}/ack", timeout_s=timeout_s,
    )  # fmt: skip


def _mqtt_step(
    host: str,
    port: int,
    *,
    tls: bool,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    username: str | None,
    password: str | None,
    client_id: str,
    topic: str,
    timeout_s: float,
) -> BrokerProbe:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from klankkast.mqttprobe import probe_mqtt

    where = f"{host}:{port}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
    result, _ = probe_mqtt(client, host, port, where, [], timeout_s, publish=(topic, b""))
    if "error" in result:
        err = result["error"]
        return BrokerProbe("unreachable", f"{where}: {type(err).__name__}: {err}")
    rc = result.get("connect")
    if rc is None:
        return BrokerProbe("timeout", f"{where} accepted TCP but sent no CONNACK")
    if rc.is_failure:
        who = f"user {username!r}" if username else "an anonymous client"
        return BrokerProbe(
            "authentication",
            f"{where} refused the login of {who}: {rc} (check [mqtt] username and password_file)",
        )
    puback = result.get("puback")
    if puback is None:
        return BrokerProbe("timeout", f"no PUBACK from {where} for {topic}")
    if puback.is_failure:
        return BrokerProbe(
            "not_authorised",
            f"user {username!r} may not publish {topic}: {puback} (the "
            f"broker's ACL must let it write {topic.rsplit('/', 1)[0]}/#; "
            "deploy/mosquitto/add-node.sh)",
        )
    return BrokerProbe("ok", f"connected to {where} as {username or 'anonymous'}; may publish")
