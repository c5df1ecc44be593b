"""deploy/ and docs/ must keep naming settings and metrics that really exist."""

from __future__ import annotations

import re
from pathlib import Path

from hub.metrics import HubMetrics
from node.metrics import NodeMetrics
from service.settings import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def env_values(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            assert name not in values, f"{path.name} sets {name} twice"
            values[name] = value
    return values


def env_names(path: Path) -> list[str]:
    return list(env_values(path))


def test_env_samples_set_only_real_settings_of_their_component():
    for sample, component in (("node.env", "node"), ("hub.env", "hub")):
        for name, value in env_values(DEPLOY / sample).items():
            assert name in BY_NAME, f"{sample}: {name} is not in service/settings.py"
            assert BY_NAME[name].component in (component, "both"), f"{sample}: {name}"
            assert not (BY_NAME[name].secret and value), f"{sample}: ship {name} empty"
    node = set(env_names(DEPLOY / "node.env"))
    assert {"SITE_URL", "SESSION_SECRET", "WB_DATABASE_URL", "WB_TRUST_PROXY"} <= node
    assert {"WB_HUB_URL", "WB_HUB_DATABASE_URL", "WB_HUB_PORT"} <= set(
        env_names(DEPLOY / "hub.env"))


def metric_names() -> set[str]:
    names: set[str] = set()
    for metrics in (NodeMetrics(), HubMetrics()):
        for family in metrics.registry.collect():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            names.add(family.name)
            names.update(family.name + s for s in suffixes.get(family.type, []))
    return names


def test_alerts_and_docs_name_only_exported_metrics():
    exported = metric_names()
    for path in (DEPLOY / "prometheus" / "alerts.yml", ROOT / "docs" / "monitoring.md"):
        used = set(re.findall(r"\bwb_[a-z_]+\b", path.read_text()))
        used -= {"wb_node", "wb_hub"}  # job names, not metrics
        assert used, path
        assert used <= exported, f"{path.name} names unknown metrics: {used - exported}"


def test_monitoring_doc_lists_every_metric():
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    for metrics in (NodeMetrics(), HubMetrics()):
        for family in metrics.registry.collect():
            shown = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{shown}`" in doc, f"docs/monitoring.md lacks {shown}"


def test_compose_wires_every_service_to_volumes_and_postgres():
    text = (DEPLOY / "compose.yaml").read_text()
    for needle in ("node-keys:/var/lib/whiteballoon/node/keys",
                   "hub-keys:/var/lib/whiteballoon/hub/keys",
                   "pgdata:/var/lib/postgresql/data", "condition: service_healthy",
                   'command: ["wb", "hub", "serve"]', 'command: ["wb", "serve"]'):
        assert needle in text
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER wb\n" in dockerfile and "HEALTHCHECK" in dockerfile


def test_systemd_units_are_hardened():
    for unit in ("wb-node.service", "wb-hub.service", "wb-hub@.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        for option in ("User=whiteballoon", "ProtectSystem=strict", "PrivateTmp=yes",
                       "NoNewPrivileges=yes", "Restart=on-failure", "ReadWritePaths=/var/lib/"):
            assert option in text, f"{unit} lacks {option}"
