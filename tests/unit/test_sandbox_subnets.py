"""The sandbox picks a Docker subnet no network holds, so a killed run's leftover cannot fail the next one."""
import pytest

from tests.sandbox import hosts


def test_free_subnet_skips_every_subnet_a_leftover_network_holds(monkeypatch):
    taken = {f"10.219.{n}.0/24" for n in range(20, 220) if n != 133}
    monkeypatch.setattr(hosts, "subnets_in_use", lambda: taken)
    assert hosts.free_subnet("10.219") == "10.219.133.0/24"


def test_free_subnet_says_how_to_clean_up_when_none_is_left(monkeypatch):
    monkeypatch.setattr(hosts, "subnets_in_use", lambda: {f"10.219.{n}.0/24" for n in range(20, 220)})
    with pytest.raises(hosts.SandboxError, match="docker network ls --filter label=circleci-demo"):
        hosts.free_subnet("10.219")
