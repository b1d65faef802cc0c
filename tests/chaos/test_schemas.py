"""Fault 7: hostile input generated from the OpenAPI of the auth service and of the gateway.

Schemathesis (its CLI, as a process) sends examples, boundary values and
fuzzed input to every operation the schema lists, and checks that nothing
answers 5xx and every documented answer matches its schema. The auth service
is reached directly and through the gateway (its schema describes its own
paths, which the gateway proxies); the gateway's own endpoints live under
``/-/`` on its admin listener, the schema at ``/-/openapi.json`` there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import ARTIFACTS

from chaos import profiles
from chaos.profiles import Profile
from chaos.report import FaultReportFactory
from chaos.stack import ChaosStack

CHECKS = ["not_a_server_error", "content_type_conformance", "response_schema_conformance"]
# The short profile reaches the auth API through the gateway only (the path
# clients take); the full one also fuzzes the auth service directly.
TARGETS = ["auth-via-gateway", "gateway"] + (["auth"] if profiles.current().name == "full" else [])
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.parametrize("target", TARGETS)
def test_openapi_fuzzing(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory, target: str
) -> None:
    report = fault_report(f"schemathesis: {target}")
    if target == "gateway":  # its own endpoints answer on its admin listener only
        base = stack.gateways[0].admin_url
    elif target == "auth-via-gateway":
        base = stack.gateways[0].url
    else:
        base = stack.auth.url
    schema = f"{stack.auth.url}/openapi.json" if "auth" in target else f"{base}/-/openapi.json"
    checks = CHECKS
    junit = ARTIFACTS / f"schemathesis-{target}.xml"
    command = [
        str(SCHEMATHESIS),
        "run",
        schema,
        "--url",
        base,
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(profile.schema_examples),
        "--seed",
        "8",
        "--workers",
        "2",
        "--request-timeout",
        "15",
        "--generation-database",
        "none",
        "--no-color",
        "--header",
        f"Authorization: Bearer {stack.admin_token()}",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]
    # run in the artifacts folder: schemathesis keeps caches in its working directory
    workdir = ARTIFACTS / "schemathesis"
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=240, check=False
    )
    output = done.stdout + done.stderr
    (ARTIFACTS / f"schemathesis-{target}.log").write_text(output)
    summary = [line for line in output.splitlines() if "passed" in line or "failed" in line]
    generated = re.search(r"(\d+) generated(?:, (\d+) found)?", output)
    if generated:
        report.sent = int(generated.group(1))
        report.failed = int(generated.group(2) or 0)
    what = (
        "no 5xx, content types and schemas match"
        if checks == CHECKS
        else "no 5xx, content types match (schemas: make chaos only, known 422 issue)"
    )
    report.check(
        f"{what}; {profile.schema_examples} examples/op",
        done.returncode == 0,
        f"exit {done.returncode}: {' '.join(summary[-3:]) or output[-1500:]}",
    )
    report.check("every process still up after", stack.dead() == [], str(stack.dead()))
    report.verdict()
