"""The missing_packages filter: the common and docker roles run apt only for what dpkg does not have."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.circleci_server.aws.plugins.filter.missing_packages import dpkg_query_argv, missing_packages

# dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' as Debian prints it; "un" and "rc"
# are packages dpkg knows but that are not installed (removed, config files left).
DPKG = ["ii  docker.io 20.10.24+dfsg1-1+deb12u1", "ii  python3-docker 5.0.3-1", "un  python3-requests <none>",
        "rc  chrony 4.3-2", "ii  docker-ce 5:18.09.9~3-0~ubuntu-xenial"]


def test_only_what_is_not_installed_is_missing():
    assert missing_packages(DPKG, ["docker.io", "python3-docker", "python3-requests", "chrony", "curl"]) == [
        "python3-requests", "chrony", "curl"]


def test_a_pinned_version_is_matched_with_apts_glob():
    assert missing_packages(DPKG, ["docker-ce=5:18.09.9*"]) == []
    assert missing_packages(DPKG, ["docker-ce=5:19.03*", "docker-ce-cli=5:18.09.9*"]) == [
        "docker-ce=5:19.03*", "docker-ce-cli=5:18.09.9*"]


def test_a_failed_query_makes_everything_missing():
    assert missing_packages([], ["docker.io"]) == ["docker.io"]


def test_wanted_must_be_a_list():
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        missing_packages(DPKG, "docker.io")


def test_the_query_asks_for_the_names_without_their_pins():
    assert dpkg_query_argv(["docker-ce=5:18.09.9*", "python3-docker"]) == [
        "dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Version}\n", "docker-ce", "python3-docker"]
