"""The egress policy and its settings, as pure functions (SPEC §9 "Egress")."""

from __future__ import annotations

import ipaddress

import pytest
from typer.testing import CliRunner

from tickwork.cli.main import app as cli
from tickwork.errors import ValidationError
from tickwork.settings import Settings, parse_allowed_networks
from tickwork.targets.egress import METADATA_ADDRESSES, EgressPolicy


def refusal(setting: str, host: str, ip: str, *, alias: bool = False) -> str | None:
    policy = EgressPolicy.from_entries(parse_allowed_networks(setting), allow_private=alias)
    return policy.refusal(host, ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    ("setting", "host", "ip", "allowed"),
    [
        ("", "hooks.example.com", "93.184.216.34", True),
        ("", "hooks.example.com", "2606:4700::1", True),
        ("", "hooks.example.com", "10.0.0.5", False),
        ("10.0.0.0/8", "hooks.example.com", "10.0.0.5", True),
        ("10.0.0.0/8", "hooks.example.com", "::ffff:10.0.0.5", True),
        ("10.0.0.0/8", "hooks.example.com", "192.168.0.5", False),
        ("10.0.0.5", "hooks.example.com", "10.0.0.5", True),
        ("10.0.0.5", "hooks.example.com", "10.0.0.6", False),
        ("fd00::/8", "hooks.example.com", "fd12::1", True),
        ("hooks.internal", "hooks.internal", "10.0.0.5", True),
        ("hooks.internal", "HOOKS.Internal.", "10.0.0.5", True),
        ("hooks.internal", "other.internal", "10.0.0.5", False),
        ("bücher.internal", "xn--bcher-kva.internal", "10.0.0.5", True),
        ("*", "hooks.example.com", "10.0.0.5", True),
        ("*", "hooks.example.com", "127.0.0.1", True),
        ("*", "hooks.example.com", "169.254.10.1", False),  # link-local needs a listing
        ("*", "hooks.example.com", "fe80::1", False),
        ("169.254.10.0/24", "hooks.example.com", "169.254.10.1", True),
        ("fe80::/10", "hooks.example.com", "fe80::1", True),
    ],
)
def test_private_destinations_need_the_operators_listing(
    setting: str, host: str, ip: str, allowed: bool
) -> None:
    reason = refusal(setting, host, ip)
    assert (reason is None) is allowed, reason
    if reason is not None:
        assert ip not in reason  # the reason never spells out the address


@pytest.mark.parametrize("ip", sorted(str(ip) for ip in METADATA_ADDRESSES))
@pytest.mark.parametrize(
    "setting", ["*", "0.0.0.0/0, ::/0", "169.254.0.0/16, 100.64.0.0/10, fd00::/8", "meta"]
)
def test_metadata_is_refused_under_every_setting(ip: str, setting: str) -> None:
    assert refusal(setting, "meta", ip) == "a cloud metadata address, which is always refused"
    assert refusal(setting, "meta", ip, alias=True) is not None


@pytest.mark.parametrize("embedded", ["::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"])
def test_metadata_embedded_in_ipv6_is_refused_too(embedded: str) -> None:
    assert refusal("*, ::/0", "meta", embedded) is not None


def test_the_older_allow_private_setting_is_an_alias_of_star(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWORK_ALLOW_PRIVATE_TARGETS", "1")
    settings = Settings.from_env()

    policy = EgressPolicy.from_entries(
        settings.allowed_target_networks, allow_private=settings.allow_private_targets
    )
    assert policy == EgressPolicy.from_entries(["*"])
    assert policy.refusal("x", ipaddress.ip_address("169.254.169.254")) is not None


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWORK_ALLOWED_TARGET_NETWORKS", " 10.0.0.0/8 ,hooks.internal,, 10.0.0.1")
    assert Settings.from_env().allowed_target_networks == (
        "10.0.0.0/8",
        "hooks.internal",
        "10.0.0.1/32",
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10.0.0.5/8", "has host bits set"),
        ("10.0.0.0/33", "is not a valid network"),
        ("10.0.0.256", "is not a valid network"),
        ("hooks example", "neither a network (CIDR), a host name nor '*'"),
        ("-hooks.internal", "neither a network"),
        ("https://hooks.internal/", "is not a valid network"),
        ("*.internal", "neither a network"),
    ],
)
def test_an_invalid_entry_is_refused_naming_the_variable(value: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_allowed_networks(value)
    assert caught.value.field == "TICKWORK_ALLOWED_TARGET_NETWORKS"
    assert problem in caught.value.message


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TICKWORK_ALLOWED_TARGET_NETWORKS", "10.0.0.0/33"), ("TICKWORK_SECRET_KEY", "short")],
)
def test_serve_does_not_start_with_an_invalid_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    result = CliRunner().invoke(cli, ["serve", "--database-url", "sqlite://"])

    assert result.exit_code == 2
    assert result.output.startswith(f"error: {variable}: ")
