# The image of every Gatehouse service, one Dockerfile for all four. Build from
# the repository root (each service needs libs/common beside it), naming the
# service:
#   docker build --build-arg SERVICE=gateway -t gatehouse/gateway .
# SERVICE is one of gateway, auth, accounts-ui, fake-backend (the folder under
# services/). The builder turns the locked dependencies (uv.lock) plus
# libs/common and that service into wheels; the runtime stage installs only
# those wheels, so no compiler, uv or source tree ends up in the image; the
# last stages add what differs per service (listen address, ports, health
# check, command) and the final FROM picks the one SERVICE names.
ARG BASE_IMAGE=python:3.11-slim
ARG SERVICE

FROM ${BASE_IMAGE} AS builder
ARG SERVICE
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN test -n "${SERVICE}" || { echo "--build-arg SERVICE=<gateway|auth|accounts-ui|fake-backend> is required" >&2; exit 1; } \
 && python -m pip install --quiet "uv==${UV_VERSION}"
WORKDIR /src
# Third-party wheels first: this layer is reused until the lock file changes.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY services/${SERVICE}/pyproject.toml services/${SERVICE}/
RUN uv export --frozen --no-dev --no-emit-workspace --no-hashes --quiet \
      --package "gatehouse-${SERVICE}" -o /wheels/deps/requirements.txt \
 && python -m pip wheel --quiet --wheel-dir /wheels/deps -r /wheels/deps/requirements.txt \
 && sha256sum /wheels/deps/* >/wheels/deps.sha256
COPY libs/common/src libs/common/src
COPY services/${SERVICE}/src services/${SERVICE}/src
RUN python -m pip wheel --quiet --no-deps --wheel-dir /wheels/local ./libs/common "./services/${SERVICE}" \
 && sha256sum /wheels/local/* >/wheels/local.sha256

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /app --shell /usr/sbin/nologin gatehouse \
 && install -d -o gatehouse -g gatehouse /app
# The wheels are bind-mounted, not copied, so none stays in a layer. A layer
# cache does not see a mount's content change, so each install comes after a
# COPY of its wheels' checksums, which does.
COPY --from=builder /wheels/deps.sha256 /usr/local/share/gatehouse/
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --quiet --no-index --find-links /wheels/deps -r /wheels/deps/requirements.txt
COPY --from=builder /wheels/local.sha256 /usr/local/share/gatehouse/
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --quiet --no-index --no-deps /wheels/local/*.whl \
 && python -m pip check
WORKDIR /app
USER 10001:10001

# Per service: listen on every interface inside the container (the ports stay
# the demo's), the ports, a health check, the command. Slim images have no
# curl, so the standard library fetches the liveness endpoint.

# 8080: the public listener; 9901: the admin listener (/-/healthz, /-/metrics,
# ...), loopback unless GATEHOUSE_GATEWAY_ADMIN_HOST says otherwise; the
# health check runs inside the container, so loopback reaches it.
FROM runtime AS service-gateway
ENV GATEHOUSE_GATEWAY_HOST=0.0.0.0 \
    GATEHOUSE_GATEWAY_PORT=8080
EXPOSE 8080 9901
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/-/healthz' % os.environ.get('GATEHOUSE_GATEWAY_ADMIN_PORT', '9901'), timeout=2)"]
ENTRYPOINT ["gatehouse-gateway"]

FROM runtime AS service-auth
ENV GATEHOUSE_AUTH_HOST=0.0.0.0 \
    GATEHOUSE_AUTH_PORT=8001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEHOUSE_AUTH_PORT', '8001'), timeout=2)"]
ENTRYPOINT ["gatehouse-auth"]
CMD ["serve"]

FROM runtime AS service-accounts-ui
ENV GATEHOUSE_ACCOUNTS_UI_HOST=0.0.0.0 \
    GATEHOUSE_ACCOUNTS_UI_PORT=8002
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEHOUSE_ACCOUNTS_UI_PORT', '8002'), timeout=2)"]
ENTRYPOINT ["gatehouse-accounts-ui"]

FROM runtime AS service-fake-backend
ENV GATEHOUSE_FAKE_BACKEND_HOST=0.0.0.0 \
    GATEHOUSE_FAKE_BACKEND_PORT=9001
EXPOSE 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEHOUSE_FAKE_BACKEND_PORT', '9001'), timeout=2)"]
ENTRYPOINT ["gatehouse-fake-backend"]

FROM service-${SERVICE}
