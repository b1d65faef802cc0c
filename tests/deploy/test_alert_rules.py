"""deploy/alerts: the rules are valid, their unit tests pass (and can fail), and
every metric they watch is one the services really export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gatehouse_common.jwt.jwks import JWKS_FETCHES
from gatehouse_gateway import metrics as gateway_metrics

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "alerts"
RULES = ALERTS / "gatehouse-rules.yml"
RULE_TESTS = ALERTS / "tests" / "gatehouse-rules.test.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_fail_when_a_burn_rate_threshold_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    text = RULES.read_text()
    assert "(14.4 * 0.001)" in text
    (tmp_path / RULES.name).write_text(text.replace("(14.4 * 0.001)", "(144 * 0.001)"))
    result = _promtool("test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert result.returncode != 0
    assert "GatehouseErrorBudgetBurnFast" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_documented() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    alerts = [rule for rule in _rules() if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == tested
    for rule in alerts:
        assert rule["labels"]["severity"] in {"page", "ticket", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_burn_rate_pairs_follow_the_sre_workbook() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in _rules() if "alert" in rule}
    fast = expressions["GatehouseErrorBudgetBurnFast"]
    slow = expressions["GatehouseErrorBudgetBurnSlow"]
    assert "ratio_rate1h > (14.4 * 0.001)" in fast and "ratio_rate5m > (14.4 * 0.001)" in fast
    assert "ratio_rate6h > (6 * 0.001)" in slow and "ratio_rate30m > (6 * 0.001)" in slow


def test_watched_metrics_are_exported_by_the_services() -> None:
    exported = {
        gateway_metrics.BACKEND_UP._name,
        gateway_metrics.CURSOR_STATE._name,
        gateway_metrics.REVOCATION_STORE_UP._name,
        gateway_metrics.HTTP_REQUESTS._name + "_total",
        gateway_metrics.HTTP_DURATION._name,
        JWKS_FETCHES._name + "_total",
    }
    text = RULES.read_text()
    for metric in (
        "gateway_backend_up",
        "gateway_cursor_state",
        "gatehouse_revocation_store_up",
        "http_requests_total",
        "http_request_duration_seconds",
        "gatehouse_jwks_fetches_total",
    ):
        assert metric in text
        assert metric in exported, f"{metric} is watched but no service exports it"
