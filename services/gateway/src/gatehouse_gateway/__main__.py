"""``gatehouse-gateway``: serve the gateway with a YAML config.

The config path comes from ``--config``, else ``GATEHOUSE_CONFIG``; it is
checked before uvicorn starts, so a bad file fails fast with the key path
and the reason. ``--host``/``--port`` (or their environment variables)
override the config's ``listen``. ``--tls-port`` with ``--tls-cert`` and
``--tls-key`` adds a TLS listener (HTTP/2 by ALPN) to the config's
``listeners`` without editing the file (the bench starts the gateway so).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gatehouse_common.cli import service_parser, settings_from_args
from gatehouse_common.listeners import CertificateFiles, ListenerSpec, TlsSpec
from gatehouse_common.server import serve
from gatehouse_gateway.config.listeners import listener_specs
from gatehouse_gateway.config.loader import ConfigError, load_config
from gatehouse_gateway.settings import GatewaySettings


def main(argv: Sequence[str] | None = None) -> None:
    parser = service_parser("Run the Gatehouse gateway: a load-balancing, JWT-checking proxy.")
    parser.add_argument(
        "--config", help="the gateway's YAML config (default: $GATEHOUSE_CONFIG or the demo's)"
    )
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument(
        "--admin-host", help="the admin listener's address (default: the config's admin.address)"
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        help="the admin listener's port (default: the config's admin.port)",
    )
    parser.add_argument("--tls-port", type=int, help="add a TLS listener on this port")
    parser.add_argument("--tls-cert", help="the TLS listener's certificate chain (PEM)")
    parser.add_argument("--tls-key", help="the TLS listener's private key (PEM)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.tls_port is not None and not (args.tls_cert and args.tls_key):
        parser.error("--tls-port needs --tls-cert and --tls-key")
    if args.config:
        os.environ["GATEHOUSE_CONFIG"] = args.config
    # The gateway is the edge: X-Forwarded-For from a client is appended to,
    # never taken as the client's address, unless the operator names trusted
    # proxies (uvicorn trusts 127.0.0.1 by default).
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")
    settings = settings_from_args(
        GatewaySettings,
        args,
        fields=("host", "port", "workers", "log_level", "admin_host", "admin_port"),
    )
    # Workers resolve the same file whatever their working directory.
    os.environ["GATEHOUSE_CONFIG"] = str(Path(settings.config).resolve())
    try:
        loaded = load_config(
            settings.config, auth_url=settings.auth_url, accounts_ui_url=settings.accounts_ui_url
        )
    except ConfigError as exc:
        print(f"gatehouse-gateway: bad config: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.check:
        print(f"{loaded.source}: ok, {len(loaded.config.routes)} route(s)")
        return
    update: dict[str, object] = {}
    if "host" not in settings.model_fields_set:
        update["host"] = loaded.config.listen.address
    if "port" not in settings.model_fields_set:
        update["port"] = loaded.config.listen.port
    settings = settings.model_copy(update=update)
    admin_host, admin_port = settings.admin_listener(loaded.config.admin)
    # Workers build their settings from the environment: they must see the same.
    os.environ["GATEHOUSE_GATEWAY_HOST"] = settings.host
    os.environ["GATEHOUSE_GATEWAY_PORT"] = str(settings.port)
    os.environ["GATEHOUSE_GATEWAY_ADMIN_HOST"] = admin_host
    os.environ["GATEHOUSE_GATEWAY_ADMIN_PORT"] = str(admin_port)
    if (admin_host, admin_port) == (settings.host, settings.port):
        print("gatehouse-gateway: the admin listener needs a port of its own", file=sys.stderr)
        sys.exit(2)
    listeners = listener_specs(loaded.config.listeners, Path(loaded.source))
    if args.tls_port is not None:
        certificate = CertificateFiles(Path(args.tls_cert).resolve(), Path(args.tls_key).resolve())
        listeners.append(ListenerSpec(settings.host, args.tls_port, tls=TlsSpec((certificate,))))
    taken = {settings.port, admin_port}
    clashing = sorted({s.port for s in listeners if s.port and s.port in taken})
    if clashing:
        print(f"gatehouse-gateway: listeners on ports already taken: {clashing}", file=sys.stderr)
        sys.exit(2)
    serve(
        "gatehouse_gateway.app:create_app",
        settings,
        fast=True,
        extra_listeners=[(admin_host, admin_port)],
        listeners=listeners,
        main_h2c=loaded.config.listen.h2c,
    )


if __name__ == "__main__":
    main()
