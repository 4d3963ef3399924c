"""The circleci_ec2 inventory plugin leans on members of amazon.aws's and ansible-core's base classes
that are not public API (underscore names). These tests pin exactly what it relies on, so an
upgrade of either that changes one of them fails here, naming it, instead of silently slowing
the inventory down or assuming the role on every cache hit.

What the plugin relies on (plugins/inventory/circleci_ec2.py):
- AWSInventoryBase.parse() calls self._set_frozen_credentials() (takes no argument), and client()
  reads self._frozen_credentials: the plugin defers the role assumption to the first real client.
- AWSPluginBase.fail_aws() raises through self._do_fail(message): the plugin prefixes its name.
- Constructable's _set_composite_vars and _add_host_to_keyed_groups evaluate every expression
  through self._compose(template, variables): the plugin's _compose
  resolves plain references (ec2_tags["circleci:role"]) without Jinja and hands the rest to it.
- AWSInventoryBase.TemplatedOptions.TEMPLATABLE_OPTIONS is a tuple the plugin extends.
- The installed amazon.aws is in the range galaxy.yml and requirements.yml pin.
"""
import inspect
import json
import re
from pathlib import Path

import yaml

import ansible_collections.amazon.aws as amazon_aws
from ansible.module_utils.compat.version import LooseVersion
from ansible.plugins.inventory import Constructable
from ansible_collections.amazon.aws.plugins.plugin_utils.base import AWSPluginBase
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase
from ansible_collections.circleci_server.aws.plugins.inventory.circleci_ec2 import InventoryModule

REPO = Path(__file__).resolve().parents[2]


def source(function):
    return inspect.getsource(function)


def parameters(function):
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def installed_amazon_aws_version():
    manifest = Path(next(iter(amazon_aws.__path__))) / "MANIFEST.json"
    return json.loads(manifest.read_text())["collection_info"]["version"]


def test_the_installed_amazon_aws_is_in_the_pinned_range():
    pinned = yaml.safe_load((REPO / "galaxy.yml").read_text())["dependencies"]["amazon.aws"]
    required = {c["name"]: c["version"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    assert required["amazon.aws"] == pinned, "galaxy.yml and requirements.yml pin amazon.aws differently"
    version = LooseVersion(installed_amazon_aws_version())
    for bound in pinned.split(","):
        operator, number = re.match(r"\s*(>=|<=|<|>|==)\s*(\S+)", bound).groups()
        assert {">=": version >= LooseVersion(number), "<": version < LooseVersion(number),
                ">": version > LooseVersion(number), "<=": version <= LooseVersion(number),
                "==": version == LooseVersion(number)}[operator], (
            "amazon.aws %s is installed, outside the pinned %s: run tests/unit/test_inventory_base_contract.py "
            "against it, then move the pin" % (version, pinned))


def test_parse_freezes_the_credentials_through_the_member_the_plugin_defers():
    assert "self._set_frozen_credentials()" in source(AWSInventoryBase.parse)
    assert parameters(AWSInventoryBase._set_frozen_credentials) == [("self", inspect.Parameter.empty)]
    assert "self._frozen_credentials" in source(AWSInventoryBase.client)
    # The plugin's own override is the one parse() reaches, and client() assumes the role first.
    assert InventoryModule._set_frozen_credentials is not AWSInventoryBase._set_frozen_credentials
    assert "super()._set_frozen_credentials()" in source(InventoryModule.client)


def test_failures_go_through_do_fail():
    assert "self._do_fail(" in source(AWSPluginBase.fail_aws)
    assert [name for name, _default in parameters(AWSPluginBase._do_fail)] == ["self", "message"]


def test_every_constructed_expression_goes_through_compose():
    assert [name for name, _default in parameters(Constructable._compose)][:3] == ["self", "template", "variables"]
    # (groups: conditions go to the templar directly; the plugin does not speed those up.)
    for helper in (Constructable._set_composite_vars, Constructable._add_host_to_keyed_groups):
        assert "self._compose(" in source(helper), helper.__name__
    assert [name for name, _default in parameters(InventoryModule._compose)][:3] == ["self", "template", "variables"]


def test_the_templated_options_are_a_tuple_the_plugin_extends():
    base = AWSInventoryBase.TemplatedOptions.TEMPLATABLE_OPTIONS
    assert isinstance(base, tuple) and "filters" in base
    assert base + ("installs", "trust") == InventoryModule.TemplatedOptions.TEMPLATABLE_OPTIONS


def test_compose_gives_what_jinja_gives_for_plain_references_and_defers_the_rest():
    plugin = InventoryModule()
    plugin._use_extra_vars = False
    plugin._reference_cache = {}
    variables = {"ec2_tags": {"circleci:role": "nomad_client"}, "private_ip_address": "10.0.0.5",
                 "block": [{"name": "/dev/sda1"}]}
    jinja = []
    plugin_super = Constructable._compose

    def counting_super(self, template, variables, disable_lookups=...):
        jinja.append(template)
        return "from-jinja"

    Constructable._compose = counting_super
    try:
        assert plugin._compose('ec2_tags["circleci:role"]', variables) == "nomad_client"
        assert plugin._compose("private_ip_address", variables) == "10.0.0.5"
        assert plugin._compose("block[0].name", variables) == "/dev/sda1"
        assert jinja == []
        assert plugin._compose("private_ip_address | default('x')", variables) == "from-jinja"
        assert plugin._compose("no_such_var", variables) == "from-jinja"
        assert jinja == ["private_ip_address | default('x')", "no_such_var"]
    finally:
        Constructable._compose = plugin_super
