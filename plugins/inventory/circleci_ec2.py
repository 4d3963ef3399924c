# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: circleci_ec2
short_description: EC2 inventory of CircleCI Server installs (Services machine and Nomad clients)
description:
  - Finds the EC2 instances of one or more CircleCI Server installs by their tags
    (C(circleci:install) = install prefix, C(circleci:role) = C(services) or C(nomad_client))
    and groups them for the collection's playbooks.
  - One paginated C(DescribeInstances) call per region per run, with every filter applied server-side;
    no per-host API calls.
  - Tags alone prove nothing (anyone allowed C(ec2:CreateTags) can set them), so a tagged instance is trusted only
    when it belongs to its install; see O(trust). An instance that fails is left out of the inventory (in no group,
    not even C(all)) with a warning that names it and says why.
  - Hosts go into O(services_group) (role C(services)), O(nomad_clients_group) (role C(nomad_client))
    and one group per install, O(install_group_prefix) + the install prefix with characters other than
    letters, digits and C(_) turned into C(_).
  - Credentials, profiles, O(endpoint_url), O(regions) and O(assume_role_arn) behave as in
    M(amazon.aws.ec2_instance_info) and the C(amazon.aws.aws_ec2) inventory plugin (same base class).
  - The configuration file name must end in C(circleci_ec2.yml) or C(circleci_ec2.yaml).
  - "Host variables: C(instance_id), C(instance_type), C(instance_state), C(launch_time) (ISO 8601),
    C(region), C(availability_zone), C(subnet_id), C(vpc_id), C(iam_instance_profile) (name),
    C(private_ip_address), C(public_ip_address),
    C(private_dns_name), C(public_dns_name) (null when the instance has none),
    C(ec2_tags) (dict; not C(tags), a reserved playbook keyword that ansible-core warns about),
    C(circleci_install), C(circleci_role) and C(ansible_host)."
author:
  - circleci_server.aws maintainers (@circleci-server-aws)
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description: Token that ensures this is a source file for this plugin.
    required: true
    choices: ['circleci_server.aws.circleci_ec2']
    type: str
  installs:
    description:
      - The install prefixes to find (values of the C(circleci:install) tag, the playbooks' C(circleci_prefix)).
      - At least one is required.
    type: list
    elements: str
    default: []
  regions:
    description:
      - Regions to search, one C(DescribeInstances) call each.
      - Empty (the default) searches every region EC2 lists, as C(amazon.aws.aws_ec2) does;
        set it to the install's region to keep runs fast.
      - Names botocore does not know fail the run before any call.
    type: list
    elements: str
    default: []
  trust:
    description:
      - What a tagged instance must match to be trusted as a host of its install, per install prefix.
      - "C(services_instance_id): the Services instance Terraform created; only that instance is the Services
        machine. Without it, the Services machine must carry the install's instance profile and be the only
        instance left that claims the role."
      - "C(instance_profile_name): the Services machine's instance profile (default C(<prefix>-circleci), the name
        the infrastructure role gives it)."
      - "C(nomad_asg_name): Nomad clients must have been launched by this Auto Scaling group (its reserved
        C(aws:autoscaling:groupName) tag, which nobody can set by hand; default C(<prefix>-nomad-clients))."
      - "C(vpc_id), C(subnet_ids): every host must be in them (the VPC defaults to the trusted Services
        machine's)."
      - "C(install_dir): where the install record is (default C(~/.circleci_server/<prefix>), the playbooks'
        C(circleci_install_dir)). When its C(outputs.json) exists, C(services_instance_id), C(subnet_ids),
        C(nomad_asg_name) and C(instance_profile_name) are read from it; values given here win."
      - Instances tagged with any other C(circleci:role), or none, are refused (Terraform makes none).
    type: dict
    default: {}
  instance_states:
    description: EC2 instance states to include (a server-side filter).
    type: list
    elements: str
    default: [pending, running]
  filters:
    description:
      - Extra server-side C(DescribeInstances) filters, name to value or list of values, for example
        C(vpc-id) or C(tag:Environment).
      - C(tag:circleci:install) and C(instance-state-name) come from O(installs) and O(instance_states).
    type: dict
    default: {}
  page_size:
    description:
      - C(MaxResults) of each C(DescribeInstances) page (EC2 allows 5 to 1000).
      - Smaller pages mean more calls; each stays short, so none runs into the SDK's read timeout.
    type: int
    default: 1000
  services_group:
    description: Group of the Services machines (role tag C(services)).
    type: str
    default: circleci_services
  nomad_clients_group:
    description: Group of the Nomad clients (role tag C(nomad_client)).
    type: str
    default: circleci_nomad_clients
  install_group_prefix:
    description: Prefix of the per-install groups.
    type: str
    default: circleci_install_
  hostname:
    description:
      - What becomes the inventory hostname. Falls back to the instance ID when the chosen value is empty
        or already taken by another instance.
      - The instance ID (the default) is unique across regions and is the Nomad client's node name.
    type: str
    default: instance_id
    choices: [instance_id, private_ip_address, private_dns_name, public_ip_address, public_dns_name, name_tag]
  use_public_ip:
    description:
      - Set C(ansible_host) to the public IP address instead of the private one.
      - Instances without a public IP keep their private IP (one warning says how many).
    type: bool
    default: false
notes:
  - The cache holds the small host records, not raw API answers; a cached run makes no AWS API call
    (the role in O(assume_role_arn) is only assumed when EC2 is actually called).
  - Simple O(compose) and O(keyed_groups) expressions (a variable, optionally followed by C(.attr) or
    C(['key']) steps) are resolved without Jinja; anything else goes through Ansible's templating as usual.
"""

EXAMPLES = r"""
# inventory/prod.circleci_ec2.yml
plugin: circleci_server.aws.circleci_ec2
regions: [us-east-1]
installs: [prod]

---
# Trust anchors given explicitly (e.g. AWX, where no install record is on disk)
plugin: circleci_server.aws.circleci_ec2
regions: [us-east-1]
installs: [prod]
trust:
  prod:
    services_instance_id: i-0123456789abcdef0
    vpc_id: vpc-0123456789abcdef0
    subnet_ids: [subnet-0123456789abcdef0]

---
# Two installs, public IPs for ansible_host, extra groups, and a cache (one hour)
plugin: circleci_server.aws.circleci_ec2
regions: [us-east-1, eu-west-1]
installs: [prod, staging]
use_public_ip: true
filters:
  vpc-id: vpc-0123456789abcdef0
keyed_groups:
  - key: instance_type
    prefix: type
  - key: ec2_tags['circleci:role']
    prefix: role
groups:
  big_clients: circleci_role == 'nomad_client' and instance_type.startswith('m5.4')
compose:
  nomad_node_name: instance_id
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/circleci_ec2
cache_timeout: 3600

---
# Assume a role in the install's account
plugin: circleci_server.aws.circleci_ec2
regions: [us-west-2]
installs: [ci]
assume_role_arn: arn:aws:iam::123456789012:role/circleci-inventory
"""

import copy  # noqa: E402 - after the documentation blocks, as Ansible expects
import hashlib  # noqa: E402
import json  # noqa: E402

try:
    import botocore
except ImportError:
    pass  # reported by require_aws_sdk()

from ansible.errors import AnsibleError  # noqa: E402

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry  # noqa: E402
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.regions import unknown_regions  # noqa: E402
from ansible_collections.circleci_server.aws.plugins.plugin_utils.circleci_inventory import (  # noqa: E402
    MISSING,
    ROLE_NOMAD_CLIENT,
    ROLE_SERVICES,
    InventoryConfigError,
    build_filters,
    host_record,
    install_anchors,
    install_group_name,
    parse_simple_reference,
    refusal_message,
    trusted_records,
    preferred_hostname,
    resolve_simple_reference,
    validate_installs,
    validate_states,
    validate_trust,
)

CACHE_FORMAT = 3  # 2: tags published as ec2_tags; 3: vpc_id and iam_instance_profile for the trust checks
MAX_REFUSAL_WARNINGS = 20
CREDENTIAL_ERRORS = (
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "RequestExpired",
    "InvalidAccessKeyId",
)
FILTER_ERRORS = ("InvalidParameterValue", "InvalidFilter", "FilterNotImplemented", "InvalidParameterCombination")


@AWSRetry.jittered_backoff()
def _describe_instances_page(client, **params):
    return client.describe_instances(**params)


def _first_line(error):
    return " ".join(str(error).split())


class InventoryModule(AWSInventoryBase):
    NAME = "circleci_server.aws.circleci_ec2"
    INVENTORY_FILE_SUFFIXES = ("circleci_ec2.yml", "circleci_ec2.yaml")

    class TemplatedOptions(AWSInventoryBase.TemplatedOptions):
        # `installs` and `trust` values may be templated (AWX passes the install name as an env var lookup).
        TEMPLATABLE_OPTIONS = AWSInventoryBase.TemplatedOptions.TEMPLATABLE_OPTIONS + ("installs", "trust")

    def __init__(self):
        super().__init__()
        self._roles_assumed = False
        self._reference_cache = {}

    # --- credentials: assume the role only when EC2 is really called (a cache hit makes no call)
    def _set_frozen_credentials(self):
        self._roles_assumed = False

    def client(self, *args, **kwargs):
        if not self._roles_assumed:
            self._roles_assumed = True
            super()._set_frozen_credentials()
        return super().client(*args, **kwargs)

    def _do_fail(self, message):
        raise AnsibleError("circleci_ec2: " + _first_line(message))

    # --- configuration
    def _settings(self):
        try:
            installs = validate_installs(self.get_option("installs"))
            states = validate_states(self.get_option("instance_states"))
            filters = build_filters(installs, states, self.get_option("filters"))
            self._trust = validate_trust(self.get_option("trust"), installs)
        except InventoryConfigError as e:
            self.fail_aws(str(e))
        return installs, filters, list(self.get_option("regions") or [])

    def _anchors(self, installs):
        """Per install, what its hosts must match (read fresh every run: the cache holds only host records)."""
        try:
            return {install: install_anchors(install, self._trust.get(install)) for install in installs}
        except InventoryConfigError as e:
            self.fail_aws(str(e))

    def _check_region_names(self, regions):
        if not regions:
            return
        unknown = unknown_regions(regions)
        if unknown:
            self.fail_aws(
                "unknown region(s) %s in 'regions' (botocore %s knows e.g. us-east-1, eu-west-1); "
                "fix the name, or upgrade botocore for a region launched after it"
                % (", ".join(map(str, unknown)), botocore.__version__)
            )

    def _query_fingerprint(self, installs, filters, regions):
        """Identifies what was asked, so a cache entry written for another configuration is not reused."""
        key = {
            "filters": filters,
            "regions": regions,
            "endpoint": self.get_option("endpoint_url"),
            "profile": self.get_option("profile"),
            "role": self.get_option("assume_role_arn"),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()

    # --- AWS
    def _describe_region(self, client, region, filters):
        records = []
        params = {"Filters": filters, "MaxResults": self._page_size}
        try:
            while True:
                page = _describe_instances_page(client, **params)
                for reservation in page.get("Reservations", ()):
                    for instance in reservation.get("Instances", ()):
                        records.append(host_record(instance, region))
                token = page.get("NextToken")
                if not token:
                    return records
                params["NextToken"] = token
        except is_boto3_error_code(CREDENTIAL_ERRORS) as e:
            self.fail_aws(
                "AWS rejected the credentials in region %s (%s); check access_key/secret_key/session_token, "
                "the profile or the assumed role"
                % (region, e.response["Error"]["Code"]),
                exception=e.response["Error"].get("Message", ""),
            )
        except is_boto3_error_code("UnauthorizedOperation") as e:
            self.fail_aws(
                "the credentials may not call ec2:DescribeInstances in region %s" % region,
                exception=e.response["Error"].get("Message", ""),
            )
        except is_boto3_error_code("OptInRequired") as e:
            self.fail_aws("region %s is not enabled for this account" % region, exception=e)
        except is_boto3_error_code(FILTER_ERRORS) as e:
            self.fail_aws(
                "malformed filter: EC2 rejected the filters in region %s" % region,
                exception=e.response["Error"].get("Message", ""),
            )
        except botocore.exceptions.NoCredentialsError:
            self.fail_aws(
                "no AWS credentials found: set access_key/secret_key, a profile, or the AWS_* environment variables"
            )
        except botocore.exceptions.EndpointConnectionError as e:
            self.fail_aws("cannot reach EC2 in region %s (is the region or endpoint_url right?)" % region, exception=e)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws("DescribeInstances failed in region %s" % region, exception=e)

    def _fetch(self, filters, regions):
        self._check_region_names(regions)
        records = []
        if regions:
            pairs = ((self.client("ec2", region=region), region) for region in regions)
        else:
            pairs = self.all_clients("ec2")
        for client, region in pairs:
            records.extend(self._describe_region(client, str(region), filters))
        records.sort(key=lambda r: (r["region"], r["instance_id"]))
        return records

    # --- Constructable, fast for simple references
    def _compose(self, template, variables, disable_lookups=...):
        if self._use_extra_vars:
            return super()._compose(template, variables)
        parsed = self._reference_cache.get(template, MISSING)
        if parsed is MISSING:
            parsed = parse_simple_reference(template)
            self._reference_cache[template] = parsed
        if parsed is not None:
            value = resolve_simple_reference(parsed, variables)
            if value is not MISSING:
                return copy.deepcopy(value) if isinstance(value, (dict, list)) else value
        return super()._compose(template, variables)

    # --- populate
    def _populate(self, records, installs):
        inventory = self.inventory
        services = inventory.add_group(self.get_option("services_group"))
        clients = inventory.add_group(self.get_option("nomad_clients_group"))
        role_groups = {ROLE_SERVICES: services, ROLE_NOMAD_CLIENT: clients}
        install_groups = {}
        prefix = self.get_option("install_group_prefix")
        for install in installs:
            install_groups[install] = inventory.add_group(install_group_name(prefix, install))

        hostname_source = self.get_option("hostname")
        use_public_ip = self.get_option("use_public_ip")
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        strict = self.get_option("strict")
        constructed = bool(compose or groups or keyed_groups)

        trusted, refused = trusted_records(records, installs, self._anchors(installs))
        for record, reason in refused[:MAX_REFUSAL_WARNINGS]:
            self.warn(refusal_message(record, reason))
        if len(refused) > MAX_REFUSAL_WARNINGS:
            self.warn("circleci_ec2: %d more tagged instance(s) refused: %s" % (
                len(refused) - MAX_REFUSAL_WARNINGS,
                ", ".join(r["instance_id"] for r, _reason in refused[MAX_REFUSAL_WARNINGS:])))

        without_public_ip = 0
        renamed = []
        for record in trusted:
            install_group = install_groups[record["circleci_install"]]
            name = preferred_hostname(record, hostname_source)
            if name in inventory.hosts:
                renamed.append(name)
                name = record["instance_id"]
            inventory.add_host(name, group=install_group)
            role_group = role_groups.get(record["circleci_role"])
            if role_group is not None:
                inventory.add_child(role_group, name)

            host_vars = dict(record)
            address = record["private_ip_address"]
            if use_public_ip:
                if record["public_ip_address"]:
                    address = record["public_ip_address"]
                else:
                    without_public_ip += 1
            host_vars["ansible_host"] = address
            for key, value in host_vars.items():
                inventory.set_variable(name, key, value)

            if constructed:
                self._set_composite_vars(compose, host_vars, name, strict=strict)
                self._add_host_to_composed_groups(groups, host_vars, name, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, host_vars, name, strict=strict)

        if without_public_ip:
            self.warn(
                "circleci_ec2: %d host(s) have no public IP; their ansible_host is the private IP" % without_public_ip
            )
        if renamed:
            self.warn(
                "circleci_ec2: hostname(s) used by more than one instance, later ones named by instance ID: %s"
                % ", ".join(sorted(set(renamed))[:10])
            )

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        try:
            self._use_extra_vars = bool(self.get_option("use_extra_vars"))
        except KeyError:
            self._use_extra_vars = False
        installs, filters, regions = self._settings()
        self._page_size = self.get_option("page_size")
        if not 5 <= self._page_size <= 1000:
            self.fail_aws("'page_size' must be between 5 and 1000 (EC2's MaxResults range), got %s" % self._page_size)
        fingerprint = self._query_fingerprint(installs, filters, regions)

        was_cached, cached = self.get_cached_result(path, cache)
        records = None
        if (
            was_cached
            and isinstance(cached, dict)
            and cached.get("format") == CACHE_FORMAT
            and cached.get("query") == fingerprint
        ):
            records = cached.get("hosts")
        if records is None:
            records = self._fetch(filters, regions)
            if self.get_option("cache"):
                self._cache[self.get_cache_key(path)] = {"format": CACHE_FORMAT, "query": fingerprint, "hosts": records}

        self._populate(records, installs)
