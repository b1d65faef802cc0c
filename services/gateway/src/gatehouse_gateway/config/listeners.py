"""The ``listeners:`` section: more sockets, with TLS, HTTP/2, HTTPS redirect and HSTS.

``listen`` (the main port) and ``admin`` stay as they were; each entry here is
one more public listener served by the same routes. The models only check the
shape and what cannot go together; :func:`listener_specs` turns them into the
values ``gatehouse_common.server.serve`` binds, with certificate paths taken
relative to the config file. Listeners are read at start (a change needs a
restart); the certificate files are reloaded live when they change or on SIGHUP.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gatehouse_common.listeners import CertificateFiles, HstsSpec, ListenerSpec, TlsSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CertificateConfig(_Strict):
    cert_file: str = Field(description="PEM chain, leaf first; relative to the config file")
    key_file: str = Field(description="PEM private key; relative to the config file")


class TlsConfig(_Strict):
    certificates: list[CertificateConfig] = Field(
        min_length=1,
        description="chosen by the client's SNI among each certificate's DNS names "
        "(wildcards match one label); the first is the default",
    )
    reload_check_interval: float = Field(
        default=2.0, gt=0, le=3600, description="seconds between looks at the files' mtimes"
    )


class HstsConfig(_Strict):
    max_age: int = Field(default=31_536_000, ge=0)
    include_subdomains: bool = False


class ListenerConfig(_Strict):
    address: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    tls: TlsConfig | None = None
    http2: bool = Field(default=True, description="offer h2 by ALPN (TLS listeners)")
    h2c: bool = Field(default=False, description="HTTP/2 with prior knowledge (plain listeners)")
    redirect_to_https: int | None = Field(
        default=None, ge=1, le=65535, description="answer every request 308 to https on this port"
    )
    hsts: HstsConfig | None = Field(default=None, description="Strict-Transport-Security (TLS)")

    @model_validator(mode="after")
    def _consistent(self) -> ListenerConfig:
        if self.tls is not None and (self.h2c or self.redirect_to_https is not None):
            raise ValueError("h2c and redirect_to_https are for plain (non-TLS) listeners")
        if self.hsts is not None and self.tls is None:
            raise ValueError("hsts needs tls: browsers ignore it over plain HTTP")
        if self.h2c and self.redirect_to_https is not None:
            raise ValueError("a redirecting listener serves no requests: h2c is pointless")
        return self

    def spec(self, base: Path) -> ListenerSpec:
        tls = None
        if self.tls is not None:
            tls = TlsSpec(
                certificates=tuple(
                    CertificateFiles(base / c.cert_file, base / c.key_file)
                    for c in self.tls.certificates
                ),
                reload_check_interval=self.tls.reload_check_interval,
            )
        hsts = None
        if self.hsts is not None:
            hsts = HstsSpec(self.hsts.max_age, self.hsts.include_subdomains)
        return ListenerSpec(
            host=self.address,
            port=self.port,
            tls=tls,
            http2=self.http2,
            h2c=self.h2c,
            redirect_to_https=self.redirect_to_https,
            hsts=hsts,
        )


def listener_specs(listeners: list[ListenerConfig], config_file: Path) -> list[ListenerSpec]:
    """The listeners as ``serve`` takes them, paths made absolute from the config's folder."""
    base = config_file.resolve().parent
    return [listener.spec(base) for listener in listeners]
