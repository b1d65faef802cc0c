# The verbs of Gatehouse. `make demo` runs the whole system, `make test` passes
# every test; both install what they need first (venv, Python and Debian packages).

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS      := .tools
UV         := $(TOOLS)/uv/bin/uv
VENV       := .venv
# The gateway alone, with only its own dependencies (as its image has): what make bench measures
GATEWAY_VENV := .venv-gateway
# ... plus granian, for make bench's server comparison (loadtest/README.md)
SERVERS_VENV := .venv-bench-servers
PY         := $(VENV)/bin/python
PYTEST_ARGS ?=

export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1

.PHONY: help
help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(UV):
	python3 -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

PACKAGE_FILES := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (this machine, CI, the
# images), nothing would ever cache bytecode, and every process would compile its
# imports from source at each start: slower, and ~15 MB more RSS per gateway
# worker for redis-py alone (loadtest/README.md). uv compiles site-packages only;
# the workspace's own packages are installed editable, so their sources are
# compiled here too: the suite starts some 550 service processes, and
# each gateway would otherwise spend ~0.1-0.2 s of CPU compiling its own modules.
$(VENV)/.synced: $(UV) $(PACKAGE_FILES) Makefile
	$(UV) sync --frozen --all-packages --group dev --compile-bytecode
	$(VENV)/bin/python -m compileall -q libs/*/src services/*/src
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create .venv with every package (locked versions)

.PHONY: lock
lock: $(UV) ## re-resolve uv.lock after a dependency change
	$(UV) lock

.PHONY: system-deps
system-deps: ## install the Debian packages the tests and tools need
	scripts/install-system-deps.sh

.PHONY: services
services: ## make sure PostgreSQL and Redis run on 127.0.0.1
	scripts/ensure-services.sh

.PHONY: demo
demo: venv ## run every service as a local process in the foreground (Ctrl-C stops all; DEMO_ARGS=--json-logs for JSON lines)
	$(PY) scripts/demo.py $(DEMO_ARGS)

.PHONY: test
# --durations: the slowest tests named in every run, to keep the suite well under 20 minutes
test: system-deps services venv lint test-lowest ## lint, the unit tests on the lowest bounds, then the whole suite against real processes, Postgres and Redis
	$(PY) -m pytest --durations=20 $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: venv ## the unit tests only (-m unit): in-process, no servers, in seconds
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

# Every package at the lowest version its pyproject.toml allows (uv's lowest-direct,
# wheels only), the test tools at their locked versions, in a venv of its own: the
# declared lower bounds are versions the code runs on, not guesses. The unit tests
# start nothing, so this takes well under a minute once uv's cache holds the wheels.
LOWEST_VENV  := .venv-lowest
LOWEST_TOOLS := pytest|pytest-asyncio|pytest-timeout|hypothesis|psutil

.PHONY: test-lowest
test-lowest: $(UV) ## the unit tests (-m unit) on the lowest dependency versions declared
	rm -rf $(LOWEST_VENV)
	$(UV) venv --quiet $(LOWEST_VENV)
	set -o pipefail; $(UV) export --frozen --only-group dev --no-hashes --no-annotate --no-header \
		| grep -E '^($(LOWEST_TOOLS))==' > $(LOWEST_VENV)/tools.txt
	$(UV) pip install --quiet --python $(LOWEST_VENV)/bin/python --resolution lowest-direct \
		--only-binary :all: -r $(LOWEST_VENV)/tools.txt \
		-e libs/common $(addprefix -e ,$(wildcard services/*))
	$(LOWEST_VENV)/bin/python scripts/check-lowest-bounds.py
	$(LOWEST_VENV)/bin/python -m pytest -m unit -q --ignore-glob='*browser*' \
		tests/common tests/gateway tests/auth tests/accounts_ui tests/fake_backend

.PHONY: compose-test
compose-test: system-deps venv ## bring the compose stack up with podman, walk through it, bring it down (make test runs it too)
	$(PY) -m pytest tests/deploy/test_compose_stack.py $(PYTEST_ARGS)

.PHONY: chaos
chaos: system-deps venv ## faults under load, full profile (10 s outages; make test runs the short one)
	GATEHOUSE_CHAOS_PROFILE=full $(PY) -m pytest tests/chaos $(PYTEST_ARGS)

# make fuzz FUZZ_SECONDS=3600 (half to each harness); FUZZ_SEED=<n> replays a run
FUZZ_SECONDS ?= 600

.PHONY: fuzz
fuzz: venv ## long differential fuzz of the gateway's request parsing and upstream client
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest tests/adversarial/fuzz -o timeout=0 $(PYTEST_ARGS)

# make loadtest USERS=50 DURATION=2m TARGET=http://127.0.0.1:8080 (the demo's gateway)
USERS      ?= 20
SPAWN_RATE ?= 5
DURATION   ?= 1m
TARGET     ?= http://127.0.0.1:8080
BENCH_ARGS ?=
BENCH_WS_ARGS ?=

.PHONY: bench bench-servers
$(GATEWAY_VENV)/.synced: $(UV) $(PACKAGE_FILES) Makefile
	UV_PROJECT_ENVIRONMENT=$(GATEWAY_VENV) $(UV) sync --frozen --package gatehouse-gateway --no-dev --compile-bytecode
	@touch $@

# The gateway's venv plus granian (the gateway's `bench-servers` group, locked in
# uv.lock), for the server comparison only: granian is in no image.
$(SERVERS_VENV)/.synced: $(UV) $(PACKAGE_FILES) Makefile
	UV_PROJECT_ENVIRONMENT=$(SERVERS_VENV) $(UV) sync --frozen --package gatehouse-gateway --no-dev --group bench-servers --compile-bytecode
	@touch $@

BENCH_VENVS := --gateway-python $(GATEWAY_VENV)/bin/python --servers-python $(SERVERS_VENV)/bin/python

bench: system-deps services venv $(GATEWAY_VENV)/.synced $(SERVERS_VENV)/.synced ## wrk: a backend, nginx and the gateway side by side (loadtest/results/)
	$(PY) loadtest/bench.py $(BENCH_VENVS) $(BENCH_ARGS)

bench-servers: system-deps services venv $(GATEWAY_VENV)/.synced $(SERVERS_VENV)/.synced ## the server comparison alone: uvicorn vs granian ASGI/RSGI, bare and with the gateway, beside nginx
	$(PY) loadtest/bench.py $(BENCH_VENVS) --no-memory --only nginx gateway-plain \
		server-uvicorn-edge server-granian-asgi server-granian-rsgi gateway-plain-granian $(BENCH_ARGS)

# make callgrind CALLGRIND_ARGS="plain --keep loadtest/.callgrind"
CALLGRIND_ARGS ?=
.PHONY: callgrind
callgrind: system-deps services venv $(GATEWAY_VENV)/.synced ## instructions per request of one gateway worker under callgrind (plain and production routes)
	$(PY) loadtest/callgrind.py --gateway-python $(GATEWAY_VENV)/bin/python $(CALLGRIND_ARGS)

.PHONY: bench-ws
bench-ws: system-deps venv $(GATEWAY_VENV)/.synced ## WebSocket echo through the gateway beside nginx, and idle sockets' memory
	$(PY) loadtest/ws_bench.py --gateway-python $(GATEWAY_VENV)/bin/python $(BENCH_WS_ARGS)

.PHONY: loadtest
loadtest: venv ## headless Locust user journey against TARGET (the demo or compose)
	$(VENV)/bin/locust -f loadtest/locustfile.py --headless --only-summary \
		--users $(USERS) --spawn-rate $(SPAWN_RATE) --run-time $(DURATION) --host $(TARGET)

.PHONY: lint
lint: venv ## ruff check, ruff format check, mypy --strict on every package and the load test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/common/src $(addsuffix /src,$(wildcard services/*)) loadtest

.PHONY: fmt
fmt: venv ## format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: clean
clean: ## remove the venv, tools and local data
	rm -rf $(VENV) $(GATEWAY_VENV) $(SERVERS_VENV) $(LOWEST_VENV) $(TOOLS) .data .pytest_cache .mypy_cache .ruff_cache
