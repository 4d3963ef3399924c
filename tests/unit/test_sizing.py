"""Sizing: the guide's tables (data/sizing.yml) through module_utils/sizing.py and the filter."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.circleci_server.aws.plugins.filter import sizing as sizing_filter
from ansible_collections.circleci_server.aws.plugins.module_utils.sizing import SizingError, compute_sizing

TABLES = sizing_filter.load_tables()

# users -> (band, services cpus/ram/disk/nic, services type, nomad min/max)
BOUNDARIES = [
    (0, "<50", (8, 32, 100, 1), "m5.2xlarge", (1, 5)),
    (49, "<50", (8, 32, 100, 1), "m5.2xlarge", (1, 5)),
    (50, "50-250", (12, 64, 200, 1), "m5.4xlarge", (5, 10)),
    (250, "50-250", (12, 64, 200, 1), "m5.4xlarge", (5, 10)),
    (251, "251-1000", (16, 128, 500, 10), "m5.8xlarge", (10, 15)),
    (1000, "251-1000", (16, 128, 500, 10), "m5.8xlarge", (10, 15)),
    (1001, "1001-5000", (20, 256, 1000, 10), "m5.16xlarge", (15, 20)),
    (5000, "1001-5000", (20, 256, 1000, 10), "m5.16xlarge", (15, 20)),
    # 5000+: no m5 has 512 GB, so the smallest fitting type of any family; max grows 1 per 250 users.
    (5001, "5001+", (24, 512, 2000, 10), "r5.16xlarge", (15, 21)),
]


@pytest.mark.parametrize("users,band,spec,services_type,counts", BOUNDARIES)
def test_band_edges_follow_the_guide(users, band, spec, services_type, counts):
    result = compute_sizing(TABLES, users)
    services = result["services"]
    assert result["band"] == band
    assert (services["cpus"], services["ram_gb"], services["disk_gb"], services["nic_gbps"]) == spec
    assert services["instance_type"] == services_type
    # The guide's disk, never below the vendor's 150 GB root volume (data/sizing.yml).
    assert services["root_volume_gb"] == max(spec[2], 150)
    nomad = result["nomad"]
    assert (nomad["min"], nomad["max"], nomad["desired"]) == (counts[0], counts[1], counts[0])
    # Every client meets the guide's per-client minimum.
    assert (nomad["cpus"], nomad["ram_gb"], nomad["disk_gb"], nomad["root_volume_gb"]) == (4, 16, 100, 100)
    assert nomad["instance_type"] == "m5.xlarge"
    assert result["warnings"] == []


def test_recommended_type_really_meets_the_requirement_for_every_band():
    for users in (0, 50, 251, 1001, 5001, 20000):
        result = compute_sizing(TABLES, users)
        for role in ("services", "nomad"):
            row = TABLES["instance_types"][result[role]["instance_type"]]
            assert row["cpus"] >= result[role]["cpus"] and row["ram_gb"] >= result[role]["ram_gb"], (users, role)


def test_client_max_keeps_growing_beyond_the_table():
    assert compute_sizing(TABLES, 10000)["nomad"]["max"] == 40
    assert compute_sizing(TABLES, 5001)["nomad"]["max"] > compute_sizing(TABLES, 5000)["nomad"]["max"]


def test_family_preference():
    assert compute_sizing(TABLES, 251, family="r5")["services"]["instance_type"] == "r5.4xlarge"


def test_undersized_choice_warns_naming_the_gap():
    result = compute_sizing(TABLES, 120, services_instance_type="m5.2xlarge", nomad_instance_type="m5.xlarge")
    assert result["warnings"] == [
        "Services machine instance type m5.2xlarge is below the requirement for 120 daily active users: "
        "8 vCPU (needs 12), 32 GB RAM (needs 64)"
    ]
    assert result["chosen"]["services"]["fits"] is False
    assert result["chosen"]["nomad"]["fits"] is True


def test_undersized_choice_fails_when_strict():
    with pytest.raises(SizingError, match="m5.xlarge is below the requirement.*4 vCPU \\(needs 8\\)"):
        compute_sizing(TABLES, 10, services_instance_type="m5.xlarge", strict=True)
    # A fitting choice is fine even when strict.
    assert compute_sizing(TABLES, 10, services_instance_type="m5.4xlarge", strict=True)["warnings"] == []


def test_network_speed_is_part_of_the_requirement():
    tables = dict(TABLES, instance_types=dict(TABLES["instance_types"], **{
        "c9.slow": {"cpus": 64, "ram_gb": 512, "nic_gbps": 1}}))
    result = compute_sizing(tables, 300, services_instance_type="c9.slow")
    assert result["warnings"] == ["Services machine instance type c9.slow is below the requirement for 300 daily "
                                  "active users: 1 Gbps network (needs 10)"]


def test_unknown_choice_warns_but_is_not_a_strict_failure():
    result = compute_sizing(TABLES, 10, nomad_instance_type="c6i.4xlarge", strict=True)
    assert len(result["warnings"]) == 1
    assert "c6i.4xlarge is not in the sizing table" in result["warnings"][0]
    assert result["chosen"]["nomad"] == {"instance_type": "c6i.4xlarge", "known": False, "fits": None}


@pytest.mark.parametrize("bad", [-1, "many", True, 12.5, None])
def test_bad_user_counts_are_refused(bad):
    with pytest.raises(SizingError):
        compute_sizing(TABLES, bad)


def test_user_count_from_a_string_is_accepted():
    assert compute_sizing(TABLES, "120")["users"] == 120


def test_the_table_is_well_formed():
    for table in ("services", "nomad_clients"):
        bounds = [row["max_users"] for row in TABLES[table]]
        assert bounds[-1] is None
        assert bounds[:-1] == sorted(bounds[:-1])
    assert TABLES["default_instance_family"] == "m5"


def test_filter_returns_the_sizing_and_turns_errors_into_filter_errors():
    sizing = sizing_filter.FilterModule().filters()["sizing"]
    assert sizing(60)["services"]["instance_type"] == "m5.4xlarge"
    with pytest.raises(AnsibleFilterError, match="circleci_server.aws.sizing: .*below the requirement"):
        sizing(60, services_instance_type="m5.xlarge", strict=True)
    with pytest.raises(AnsibleFilterError, match="cannot be negative"):
        sizing(-5)
    with pytest.raises(AnsibleFilterError, match="cannot use the sizing tables"):
        sizing(5, tables={"services": []})


def test_services_root_volume_is_at_least_the_vendors_150_gb():
    # enterprise-setup circleci.tf: root_block_device volume_size = "150"; the guide says 100 GB for <50 users.
    assert compute_sizing(TABLES, 10)["services"]["root_volume_gb"] == 150
    assert compute_sizing(TABLES, 100)["services"]["root_volume_gb"] == 200
    tables = dict(TABLES, services_root_volume_minimum_gb=None)
    assert compute_sizing(tables, 10)["services"]["root_volume_gb"] == 100
