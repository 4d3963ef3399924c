"""Pure helpers of the replicated modules: license IDs, console auth types, GitHub settings."""
import json

from ansible_collections.circleci_server.aws.plugins.modules.github_oauth import desired_settings
from ansible_collections.circleci_server.aws.plugins.modules.replicated_console_auth import auth_type_of
from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import license_id_of


def test_license_id_from_json_yaml_or_none():
    assert license_id_of(json.dumps({"license_id": "abc123", "channel_name": "Stable"})) == "abc123"
    assert license_id_of(json.dumps({"LicenseID": "XYZ"})) == "XYZ"
    assert license_id_of("channel: Stable\nlicense_id: 'k9-77'\n") == "k9-77"
    assert license_id_of("\x00\x01 binary signed bundle") is None
    assert license_id_of(json.dumps({"channel_name": "Stable"})) is None


def test_console_auth_type():
    assert auth_type_of({"Type": "password", "Password": {"Password": ""}}) == "password"
    assert auth_type_of({"Password": {"Password": ""}}) == "password"
    assert auth_type_of({}) == "anonymous"
    assert auth_type_of([]) == "unknown"


def test_github_settings_public_and_enterprise():
    public = desired_settings({"github_type": "public", "client_id": "id", "client_secret": "s",
                               "enterprise_host": None})
    assert public == {"ghe_type": "github_type_public", "ghe_client_id": "id", "ghe_client_secret": "s"}
    enterprise = desired_settings({"github_type": "enterprise", "client_id": "id", "client_secret": "s",
                                   "enterprise_host": "ghe.example.com"})
    assert enterprise["ghe_type"] == "github_type_enterprise" and enterprise["ghe_domain"] == "ghe.example.com"
