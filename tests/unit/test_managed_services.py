"""managed_files' services: the units a role's files belong to, enabled and started in the same module run.

ManagedServices is driven with a stand-in for systemctl that keeps each unit's
LoadState, ActiveState, UnitFileState and NeedDaemonReload the way systemd reports
them (`systemctl show`); the Molecule scenarios of the common, docker and
nomad_client roles run it against real systemd.
"""
import pytest

from ansible_collections.circleci_server.aws.plugins.module_utils.managed_files import (
    ManagedFilesError, ManagedServices, parse_show, touches_units)


class FakeSystemd:
    """Units by name; `installed` units have a unit file on disk, `loaded` ones are known to the manager."""

    def __init__(self, **units):
        defaults = dict(installed=True, loaded=True, enabled="enabled", active="active", need_reload=False,
                        masked=False)
        self.units = {name: dict(defaults, **state) for name, state in units.items()}
        self.calls = []

    def run(self, argv):
        args = argv[1:]
        self.calls.append(" ".join(a for a in args if not a.startswith("--property")))
        verb = args[0]
        if verb == "show":
            blocks = []
            for name in [a for a in args[1:] if not a.startswith("--")]:
                unit = self.units.get(name, dict(installed=False, loaded=False))
                load = "masked" if unit.get("masked") else ("loaded" if unit["loaded"] else "not-found")
                blocks.append("Id=%s.service\nLoadState=%s\nActiveState=%s\nUnitFileState=%s\nNeedDaemonReload=%s\n" % (
                    name, load, unit.get("active", "inactive") if unit["loaded"] else "inactive",
                    unit.get("enabled", "") if unit["loaded"] else "", "yes" if unit.get("need_reload") else "no"))
            return 0, "\n".join(blocks), ""
        if verb == "daemon-reload":
            for unit in self.units.values():
                unit["loaded"], unit["need_reload"] = unit["installed"], False
            return 0, "", ""
        unit = self.units[args[-1]]
        unit.update({"enable": {"enabled": "enabled"}, "disable": {"enabled": "disabled"},
                     "start": {"active": "active"}, "stop": {"active": "inactive"}}[verb])
        return 0, "", ""


class FakeModule:
    def __init__(self, systemd, check_mode=False):
        self.systemd, self.check_mode = systemd, check_mode

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name

    def run_command(self, argv):
        return self.systemd.run(argv)


def apply(systemd, services, check=False, reload_needed=False):
    wanted = [dict({"enabled": True, "state": "started"}, **service) for service in services]
    return ManagedServices(FakeModule(systemd, check)).apply(wanted, reload_needed=reload_needed)


def test_a_converged_unit_costs_one_systemctl_show_and_changes_nothing():
    systemd = FakeSystemd(nomad={}, chrony={"enabled": "static"})
    result = apply(systemd, [{"name": "nomad"}, {"name": "chrony"}])
    assert systemd.calls == ["show -- nomad chrony"]
    assert not result["changed"] and result["changed_services"] == [] and result["diff"] == []
    assert not result["daemon_reloaded"]


def test_a_stopped_disabled_unit_is_enabled_and_started_and_the_diff_says_so():
    systemd = FakeSystemd(docker={"enabled": "disabled", "active": "failed"})
    result = apply(systemd, [{"name": "docker"}])
    assert systemd.calls == ["show -- docker", "enable -- docker", "start -- docker"]
    assert result["changed_services"] == ["docker"]
    assert result["services"] == [{"name": "docker", "changed": True, "enabled": "enabled", "state": "active"}]
    assert result["diff"][0]["before"] == {"enabled": "disabled", "state": "failed"}
    assert result["diff"][0]["after"] == {"enabled": "enabled", "state": "active"}
    assert systemd.units["docker"]["active"] == "active"


def test_check_mode_reports_the_change_and_runs_nothing_but_show():
    systemd = FakeSystemd(docker={"enabled": "disabled", "active": "inactive"},
                          drain={"installed": False, "loaded": False})
    result = apply(systemd, [{"name": "docker"}, {"name": "drain"}], check=True)
    assert systemd.calls == ["show -- docker drain"]
    assert result["changed_services"] == ["docker", "drain"] and not result["daemon_reloaded"]
    assert result["services"][1]["state"] == "(unit not loaded yet)"


def test_a_unit_changed_on_disk_since_systemd_loaded_it_is_reloaded_first():
    # An earlier run wrote the unit and failed before any reload: nothing in this run changed it.
    systemd = FakeSystemd(nomad={"need_reload": True})
    result = apply(systemd, [{"name": "nomad"}])
    assert systemd.calls == ["show -- nomad", "daemon-reload", "show -- nomad"]
    assert result["daemon_reloaded"] and not result["changed"]


def test_a_new_unit_file_is_loaded_by_a_reload_then_started():
    systemd = FakeSystemd(drain={"loaded": False, "enabled": "disabled", "active": "inactive"})
    result = apply(systemd, [{"name": "drain"}])
    assert systemd.calls == ["show -- drain", "daemon-reload", "show -- drain", "enable -- drain", "start -- drain"]
    assert result["changed_services"] == ["drain"]


def test_a_unit_file_written_by_the_same_task_makes_a_reload():
    systemd = FakeSystemd(nomad={})
    result = apply(systemd, [{"name": "nomad"}], reload_needed=True)
    assert "daemon-reload" in systemd.calls and result["daemon_reloaded"]


def test_a_unit_systemd_does_not_know_and_a_masked_unit_fail_naming_them():
    with pytest.raises(ManagedFilesError, match="systemd has no unit circleci-nomad-drain"):
        apply(FakeSystemd(), [{"name": "circleci-nomad-drain"}])
    with pytest.raises(ManagedFilesError, match="chrony is masked: unmask it"):
        apply(FakeSystemd(chrony={"masked": True}), [{"name": "chrony"}])


def test_stopped_and_disabled_are_brought_about_too():
    systemd = FakeSystemd(nomad={})
    result = apply(systemd, [{"name": "nomad", "enabled": False, "state": "stopped"}])
    assert systemd.calls == ["show -- nomad", "disable -- nomad", "stop -- nomad"]
    assert result["services"][0]["enabled"] == "disabled" and result["services"][0]["state"] == "inactive"


def test_show_output_is_split_per_unit_and_a_short_answer_is_an_error():
    text = "Id=a.service\nLoadState=loaded\n\nId=b.service\nLoadState=not-found\n"
    assert parse_show(text, 2) == [{"Id": "a.service", "LoadState": "loaded"},
                                   {"Id": "b.service", "LoadState": "not-found"}]
    with pytest.raises(ManagedFilesError, match="for 1 unit"):
        parse_show("Id=a.service\n", 2)


def test_only_paths_systemd_reads_units_from_ask_for_a_reload():
    assert touches_units(["/etc/nomad.d/client.hcl", "/etc/systemd/system/nomad.service"])
    assert touches_units(["/etc/systemd/system/docker.service.d/http-proxy.conf"])
    assert not touches_units(["/etc/docker/daemon.json", "/etc/chrony/chrony.conf"])
