"""The settings schema: config/backorder.example.toml documents every key with its default,
invalid files name the offending key (also through ``backorder check-config``), and the
wire's partial-weights struct stays in step with the weights of the settings."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path

import msgspec
import pytest

from backorder import protocol as p
from backorder.config import settings as cfg

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "backorder.example.toml"


def settings_structs(root: type = cfg.Settings) -> dict[type, tuple[str, ...]]:
    """Every Struct reachable from ``root`` through field types (also inside dict, list,
    Optional and Annotated), with its field names."""
    found: dict[type, tuple[str, ...]] = {}

    def visit(tp) -> None:
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            if tp in found:
                return
            found[tp] = tuple(f.name for f in msgspec.structs.fields(tp))
            hints = typing.get_type_hints(tp, include_extras=True)
            for name in found[tp]:
                visit(hints[name])
            return
        for arg in typing.get_args(tp):  # Annotated, Union / X | None, dict[K, V], list[X]
            visit(arg)

    visit(root)
    return found


def test_the_walk_reaches_every_settings_struct():
    assert set(settings_structs()) == {
        cfg.Settings,
        cfg.DaemonSettings,
        cfg.AllocationSettings,
        cfg.Weights,
        cfg.FulfillmentSettings,
        cfg.KpiSettings,
        cfg.CarriersSettings,
        cfg.RemoteCarrierSettings,
        cfg.Address,
        cfg.ReorderPolicy,
        cfg.PlannerSettings,
        cfg.Source,
        cfg.ProcurementSettings,
        # running as a site service
        cfg.AccessSettings,
        cfg.LimitsSettings,
        cfg.TcpSettings,
        cfg.TcpClient,
        cfg.MetricsSettings,
        cfg.LoggingSettings,
        # notifications
        cfg.NotificationSettings,
        cfg.SmtpSettings,
        cfg.WebhookSettings,
        cfg.FileDropSettings,
        cfg.EdiSettings,
        cfg.IntakeSettings,
        cfg.ChannelSettings,
        cfg.ValidationProfile,
        cfg.WritebackSettings,
        cfg.ThreeplSettings,
        cfg.PromiseSettings,
        cfg.RetentionSettings,
    }


def _documented_keys(text: str) -> set[str]:
    """Keys set in the file (also in commented-out examples) and table name parts."""
    keys = set(re.findall(r"^[ \t]*#?[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=", text, flags=re.M))
    for header in re.findall(r"^[ \t]*\[([^\]\n]+)\]", text, flags=re.M):
        keys |= {part.strip().strip('"') for part in header.split(".")}
    return keys


def test_example_config_parses_and_documents_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    settings = cfg.parse_settings(text, str(EXAMPLE))
    documented = _documented_keys(text)
    missing = {
        f"{tp.__name__}.{name}" for tp, names in settings_structs().items() for name in names if name not in documented
    }
    assert sorted(missing) == [], "keys of backorder.config.settings missing from config/backorder.example.toml"
    # the sections shown with their defaults do show the defaults
    defaults = cfg.Settings()
    for section in ("daemon", "allocation", "fulfillment", "default_policy", "strict_skus", "intake"):
        assert getattr(settings, section) == getattr(defaults, section), section
    # and the examples the file promises are there
    assert settings.skus["SKU-1"].source == "supplier:ACME"
    assert "ACME" in settings.sources


def test_an_absurd_clock_speed_is_a_config_error_naming_the_key():
    with pytest.raises(cfg.ConfigError, match=r"daemon\.clock_speed"):
        cfg.parse_settings('[daemon]\nclock = "simulated"\nclock_speed = 1e300\n')
    assert cfg.parse_settings("[daemon]\nclock_speed = 1e6\n").daemon.clock_speed == 1e6


def test_an_unreadable_clock_start_is_a_config_error_naming_the_key():
    with pytest.raises(cfg.ConfigError, match=r"daemon\.clock_start"):
        cfg.parse_settings('[daemon]\nclock = "simulated"\nclock_start = "next tuesday"\n')
    assert cfg.parse_settings('[daemon]\nclock_start = "2026-01-05T09:00:00Z"\n').daemon.clock_start


def _check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backorder", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_check_config_accepts_the_example():
    done = _check_config(EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[daemon]\nclock_speed = 1e300\n", "daemon.clock_speed"),
        ('[daemon]\nclock_start = "soon"\n', "daemon.clock_start"),
        ("[allocation.weights]\nrush = -1\n", "allocation.weights.rush"),
        ('[skus."SKU-1"]\nreorder_point = 5\norder_up_to = 1\n', "skus.SKU-1"),
        ('[skus."SKU-1"]\nmoq = 0\n', "skus.SKU-1.moq"),
        ("[daemon]\ngrace = 3\n", "grace"),
        ('[fulfillment]\ncarrier = "fedex"\n', "fulfillment.carrier"),  # a carrier the daemon does not have
    ],
)
def test_check_config_refuses_an_invalid_file_naming_the_key(tmp_path, toml, key):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    done = _check_config(path)
    assert done.returncode != 0
    assert key in done.stderr, done.stderr
    assert "ok" not in done.stdout


def test_the_partial_weights_of_policy_set_are_the_settings_weights():
    assert p.WeightsUpdate.__struct_fields__ == cfg.Weights.__struct_fields__
    req = p.decode_request(b'{"op": "policy.set", "mode": "fifo", "weights": {"age": 2}}')
    assert req.weights.changes() == {"age": 2.0}
    assert msgspec.structs.replace(cfg.Weights(), **req.weights.changes()) == cfg.Weights(age=2.0)


def test_the_configured_carrier_is_the_one_that_labels():
    from typing import get_args

    from backorder.actors.carrier import CARRIERS
    from backorder.actors.engine import Engine
    from backorder.clock import SimClock

    carrier_field = {f.name: f.type for f in msgspec.structs.fields(cfg.FulfillmentSettings)}["carrier"]
    assert set(get_args(carrier_field)) == set(CARRIERS)

    class NoJournal:
        last_seq, cause, corr = 0, "", ""

    engine = Engine(cfg.parse_settings('[fulfillment]\ncarrier = "local"\n'), NoJournal(), SimClock(0.0))
    assert engine.carrier.name == "local" and engine.carrier.tracking_number("S0000001") == "BO01000000018"
