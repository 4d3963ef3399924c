# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only checks of what the install guide asks a person to verify before installing.

``Preflight`` is the client class behind the ``circleci_server.aws.preflight``
module. It only calls Describe*/Get*/List* and iam:SimulatePrincipalPolicy, so
it can never create or change anything. Each check returns
``{"name", "status", "reason"}`` with status ``ok``, ``warn``, ``fail`` or
``skip`` (not run: its input was not given, or a check it depends on failed).

    checks = Preflight(ec2, iam, sts, region="us-east-1").run(vpc_id=..., subnet_id=..., ...)
"""
import json
import os
import re

try:
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
except ImportError:  # pragma: no cover - AnsibleAWSModule reports missing botocore
    botocore = None
    BotoCoreError = ClientError = EndpointConnectionError = Exception

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.circleci_server.aws.plugins.module_utils.regions import known_regions

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
STATUSES = (OK, WARN, FAIL, SKIP)

# Every check, in the order they run and appear in the table (the module docs list the same).
CHECK_NAMES = (
    "region", "vpc", "vpc_dns_support", "subnet", "subnet_free_addresses", "subnet_route", "s3_endpoint",
    "key_pair", "ami", "services_instance_type", "nomad_instance_type", "iam_permissions",
    "license_file", "passphrase", "terraform_binary",
)
PASSPHRASE_PATTERN = re.compile(r"[A-Za-z0-9]+")
# Targets of a 0.0.0.0/0 route that give a private subnet egress (NAT gateway, NAT instance).
NAT_TARGETS = ("NatGatewayId", "InstanceId")
# Targets that may give egress, but through something preflight cannot see into.
OPAQUE_TARGETS = ("TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId", "CoreNetworkArn",
                  "LocalGatewayId", "CarrierGatewayId")
MAX_NAMES_IN_REASON = 8
# Canonical's AWS account: its Ubuntu AMIs (what the infrastructure role looks up).
CANONICAL_OWNER = "099720109477"
# "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20190628" or
# "Canonical, Ubuntu, 16.04 LTS, amd64 xenial image build on 2019-06-28".
UBUNTU_IN_NAME = re.compile(r"ubuntu-(?:[a-z]+-)?(\d{2}\.\d{2})(?:-|$)")
UBUNTU_IN_DESCRIPTION = re.compile(r"\bUbuntu,? (\d{2}\.\d{2})\b")


def ubuntu_release_of(image):
    """The Ubuntu release ('16.04') an AMI's name or description states, or None."""
    for pattern, text in ((UBUNTU_IN_NAME, image.get("Name") or ""),
                          (UBUNTU_IN_DESCRIPTION, image.get("Description") or "")):
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def _version_tuple(version):
    return tuple(int(part) for part in re.findall(r"\d+", str(version))[:3])


def docker_os_problems(release, docker_versions, os_requirements):
    """Why ``release`` (e.g. '24.04') cannot run each of ``docker_versions``; [] when it can.

    ``os_requirements`` is data/versions.yml's ubuntu_releases, docker_ubuntu_releases and
    docker_cgroup_v2_minimum. Returns (problems, unknown): sentences, and the Docker versions
    the data says nothing about.
    """
    ubuntu = (os_requirements.get("ubuntu_releases") or {}).get(release) or {}
    packages = os_requirements.get("docker_ubuntu_releases") or {}
    cgroup_minimum = os_requirements.get("docker_cgroup_v2_minimum")
    problems, unknown = [], []
    for version in docker_versions:
        year_month = ".".join(str(version).split(".")[:2])
        if ubuntu.get("cgroup") == "v2" and cgroup_minimum and _version_tuple(version) < _version_tuple(cgroup_minimum):
            problems.append("Docker %s cannot run on Ubuntu %s's cgroup v2 (Docker needs %s or later for it)"
                            % (version, release, cgroup_minimum))
        elif year_month in packages:
            if release not in [str(r) for r in packages[year_month]]:
                problems.append("Docker has no %s packages for Ubuntu %s (only for %s)"
                                % (version, release, ", ".join(str(r) for r in packages[year_month])))
        else:
            unknown.append(str(version))
    return problems, unknown


def result(name, status, reason):
    if status not in STATUSES:
        raise ValueError("unknown status %r" % status)
    return {"name": name, "status": status, "reason": reason}


def error_code(exc):
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def error_text(exc):
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return "%s: %s" % (err.get("Code", "error"), err.get("Message", str(exc)))
    return str(exc) or exc.__class__.__name__


def short_error(exc, limit=160):
    """The first line of error_text, cut to ``limit`` characters (an unparseable answer carries a whole page)."""
    lines = error_text(exc).strip().splitlines() or [""]
    text = " ".join(lines[0].split()).rstrip(":")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _names(items):
    items = list(items)
    shown = ", ".join(items[:MAX_NAMES_IN_REASON])
    if len(items) > MAX_NAMES_IN_REASON:
        shown += " and %d more" % (len(items) - MAX_NAMES_IN_REASON)
    return shown


def role_arn_from_caller(arn):
    """IAM principal ARN to simulate for a caller ARN from sts:GetCallerIdentity.

    Assumed-role sessions (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) are simulated as the role.
    Returns (arn, note) where arn is None when the caller cannot be simulated.
    """
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None, "caller ARN %s is not an IAM ARN" % arn
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "iam" and resource == "root":
        return None, "the caller is the account root user, which has every permission (use an IAM user or role)"
    if service == "iam":
        return arn, ""
    if service == "sts" and resource.startswith("assumed-role/"):
        role_name = resource.split("/")[1]
        return "arn:%s:iam::%s:role/%s" % (partition, account, role_name), "assumed role %s" % role_name
    if service == "sts" and resource.startswith("federated-user/"):
        return None, "federated user %s cannot be simulated by IAM" % resource
    return arn, ""


def evaluate_simulation(evaluation_results):
    """Split iam:SimulatePrincipalPolicy EvaluationResults into (allowed, denied) action names."""
    allowed, denied = [], []
    for item in evaluation_results:
        (allowed if item.get("EvalDecision") == "allowed" else denied).append(item["EvalActionName"])
    return allowed, denied


def format_table(checks):
    """The checks as fixed-width text lines (header first), for a terminal."""
    width = max([len("CHECK")] + [len(c["name"]) for c in checks])
    lines = ["%-*s  %-6s %s" % (width, "CHECK", "STATUS", "REASON")]
    lines.append("%s  %s %s" % ("-" * width, "-" * 6, "-" * 40))
    for check in checks:
        lines.append("%-*s  %-6s %s" % (width, check["name"], check["status"].upper(), check["reason"]))
    return lines


def summarize(checks):
    counts = {status: 0 for status in STATUSES}
    for check in checks:
        counts[check["status"]] += 1
    return counts


class Preflight:
    """Runs the checks. ``ec2``, ``iam`` and ``sts`` are boto3 clients (``iam``/``sts`` may be None)."""

    def __init__(self, ec2=None, iam=None, sts=None, region=None, run_command=None, get_bin_path=None,
                 retry=None):
        self.ec2 = ec2
        self.iam = iam
        self.sts = sts
        self.region = region
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.retry = retry or AWSRetry.jittered_backoff(retries=5, delay=1, max_delay=10)
        self.checks = []
        self._subnet = None
        self._vpc_ok = False
        self._route_table = None
        self._subnet_kind = None

    # -- plumbing -------------------------------------------------------------
    def _call(self, client, operation, **kwargs):
        return self.retry(getattr(client, operation))(**kwargs)

    def _add(self, name, status, reason):
        self.checks.append(result(name, status, reason))
        return status

    def run(self, vpc_id=None, subnet_id=None, subnet_type="auto", key_name=None, ami_id=None,
            ami_name_filter=None, docker_versions=None, os_requirements=None, nomad_max=None, services_count=1,
            address_headroom=20, services_instance_type=None,
            nomad_instance_type=None, services_requirement=None, nomad_requirement=None, strict_sizing=False,
            iam_actions=None, license_path=None, license_content=None, secret_passphrase=None,
            terraform_binary=None):
        self.checks = []
        region_status = self._guarded("region", self.check_region)
        aws_skip = None if region_status == OK else "not checked: the region check failed"

        def aws(name, func, *args):
            if aws_skip:
                return self._add(name, SKIP, aws_skip)
            return self._guarded(name, func, *args)

        aws("vpc", self.check_vpc, vpc_id)
        aws("vpc_dns_support", self.check_vpc_dns_support, vpc_id)
        aws("subnet", self.check_subnet, subnet_id, vpc_id)
        aws("subnet_free_addresses", self.check_subnet_free_addresses, services_count, nomad_max, address_headroom)
        aws("subnet_route", self.check_subnet_route, subnet_type)
        aws("s3_endpoint", self.check_s3_endpoint)
        aws("key_pair", self.check_key_pair, key_name)
        aws("ami", self.check_ami, ami_id, ami_name_filter, docker_versions, os_requirements)
        aws("services_instance_type", self.check_instance_type, "services_instance_type", "Services machine",
            services_instance_type, services_requirement, strict_sizing)
        aws("nomad_instance_type", self.check_instance_type, "nomad_instance_type", "Nomad client",
            nomad_instance_type, nomad_requirement, strict_sizing)
        aws("iam_permissions", self.check_iam_permissions, iam_actions)
        self._guarded("license_file", self.check_license, license_path, license_content)
        self._guarded("passphrase", self.check_passphrase, secret_passphrase)
        self._guarded("terraform_binary", self.check_terraform_binary, terraform_binary)
        return self.checks

    def _guarded(self, name, func, *args):
        """Run one check; an unexpected error fails that check (named), never the whole run."""
        try:
            return func(*args)
        except Exception as exc:  # pylint: disable=broad-except
            reason = "the check itself failed: %s: %s" % (exc.__class__.__name__, short_error(exc))
            return self._add(name, FAIL, reason)

    # -- AWS ------------------------------------------------------------------
    def check_region(self):
        name = "region"
        if not self.region:
            return self._add(name, FAIL, "no region given: set the region (or AWS_REGION)")
        if self.ec2 is None:
            return self._add(name, SKIP, "no EC2 client")
        try:
            regions = self._call(self.ec2, "describe_regions", AllRegions=True)["Regions"]
        # Any failure here means "cannot use this region".
        except Exception as exc:  # pylint: disable=broad-except
            # The real API has no endpoint for a region that does not exist (EndpointConnectionError);
            # moto answers HTTP 500 for it. Either way the reason says whether botocore knows the name.
            known = known_regions()
            if isinstance(exc, EndpointConnectionError):
                what = "cannot reach EC2 in %s" % self.region
            else:
                what = "ec2:DescribeRegions failed in %s (%s)" % (self.region, short_error(exc, 80))
            if known and self.region not in known:
                return self._add(name, FAIL, "%s is not an EC2 region botocore knows (is the name right?); %s"
                                 % (self.region, what))
            return self._add(name, FAIL, "%s: check the AWS credentials and network" % what)
        by_name = {r["RegionName"]: r for r in regions}
        if self.region not in by_name:
            near = sorted(n for n in by_name if n.split("-")[0] == self.region.split("-")[0]) or sorted(by_name)
            return self._add(name, FAIL, "%s is not an EC2 region; regions like it: %s" % (self.region, _names(near)))
        if by_name[self.region].get("OptInStatus") == "not-opted-in":
            return self._add(name, FAIL, "region %s is not enabled for this account: opt in to it "
                             "(Account settings > AWS Regions) or choose another" % self.region)
        return self._add(name, OK, "%s is an enabled EC2 region" % self.region)

    def check_vpc(self, vpc_id):
        name = "vpc"
        if not vpc_id:
            return self._add(name, FAIL, "no VPC id given")
        try:
            vpcs = self._call(self.ec2, "describe_vpcs", VpcIds=[vpc_id])["Vpcs"]
        except ClientError as exc:
            if error_code(exc) in ("InvalidVpcID.NotFound", "InvalidVpcID.Malformed"):
                vpcs = []
            else:
                return self._add(name, FAIL, "cannot describe VPC %s: %s" % (vpc_id, short_error(exc)))
        if not vpcs:
            return self._add(name, FAIL, "VPC %s does not exist in %s" % (vpc_id, self.region))
        self._vpc_ok = True
        return self._add(name, OK, "VPC %s exists (%s)" % (vpc_id, vpcs[0].get("CidrBlock", "")))

    def check_vpc_dns_support(self, vpc_id):
        name = "vpc_dns_support"
        if not self._vpc_ok:
            return self._add(name, SKIP, "not checked: no VPC")
        try:
            attr = self._call(self.ec2, "describe_vpc_attribute", VpcId=vpc_id, Attribute="enableDnsSupport")
        except ClientError as exc:
            return self._add(name, FAIL, "cannot read enableDnsSupport of %s: %s" % (vpc_id, short_error(exc)))
        if attr.get("EnableDnsSupport", {}).get("Value"):
            return self._add(name, OK, "enableDnsSupport is true on %s" % vpc_id)
        return self._add(name, FAIL, "enableDnsSupport is false on %s: the hosts cannot use the Amazon DNS server; "
                         "fix: aws ec2 modify-vpc-attribute --vpc-id %s --enable-dns-support '{\"Value\":true}'"
                         % (vpc_id, vpc_id))

    def check_subnet(self, subnet_id, vpc_id):
        name = "subnet"
        if not subnet_id:
            return self._add(name, FAIL, "no subnet id given")
        try:
            subnets = self._call(self.ec2, "describe_subnets", SubnetIds=[subnet_id])["Subnets"]
        except ClientError as exc:
            if error_code(exc) in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                subnets = []
            else:
                return self._add(name, FAIL, "cannot describe subnet %s: %s" % (subnet_id, short_error(exc)))
        if not subnets:
            return self._add(name, FAIL, "subnet %s does not exist in %s" % (subnet_id, self.region))
        subnet = subnets[0]
        if vpc_id and subnet["VpcId"] != vpc_id:
            return self._add(name, FAIL, "subnet %s belongs to VPC %s, not to %s: choose a subnet of %s"
                             % (subnet_id, subnet["VpcId"], vpc_id, vpc_id))
        self._subnet = subnet
        return self._add(name, OK, "subnet %s (%s, %s) is in VPC %s"
                         % (subnet_id, subnet.get("CidrBlock", ""), subnet.get("AvailabilityZone", ""),
                            subnet["VpcId"]))

    def check_subnet_free_addresses(self, services_count, nomad_max, address_headroom):
        name = "subnet_free_addresses"
        if self._subnet is None:
            return self._add(name, SKIP, "not checked: no usable subnet")
        free = int(self._subnet.get("AvailableIpAddressCount", 0))
        clients = int(nomad_max or 0)
        needed = int(services_count) + clients + int(address_headroom)
        parts = "%d Services machine + %d Nomad clients (max) + %d headroom for machine/remote-docker VMs" % (
            int(services_count), clients, int(address_headroom))
        if free < needed:
            return self._add(name, FAIL, "subnet %s has %d free addresses, the install needs %d (%s): "
                             "use a larger subnet (a /24 has 251 usable addresses)"
                             % (self._subnet["SubnetId"], free, needed, parts))
        return self._add(name, OK, "%d free addresses, %d needed (%s)" % (free, needed, parts))

    def _route_table_for(self, subnet):
        tables = self._call(self.ec2, "describe_route_tables",
                            Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}])["RouteTables"]
        if tables:
            return tables[0], "associated"
        tables = self._call(self.ec2, "describe_route_tables",
                            Filters=[{"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                                     {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        return (tables[0], "main") if tables else (None, None)

    def check_subnet_route(self, subnet_type):
        name = "subnet_route"
        if self._subnet is None:
            return self._add(name, SKIP, "not checked: no usable subnet")
        try:
            table, how = self._route_table_for(self._subnet)
        except ClientError as exc:
            return self._add(name, FAIL, "cannot read the route tables: %s" % short_error(exc))
        subnet_id = self._subnet["SubnetId"]
        if table is None:
            return self._add(name, FAIL, "subnet %s has no route table" % subnet_id)
        self._route_table = table
        rtb = "%s (%s)" % (table["RouteTableId"], how)
        default = [r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if not default:
            return self._add(name, FAIL, "route table %s of subnet %s has no 0.0.0.0/0 route: add one through an "
                             "Internet gateway (public subnet) or a NAT gateway/instance (private subnet)"
                             % (rtb, subnet_id))
        route = default[0]
        if route.get("State") == "blackhole":
            return self._add(name, FAIL, "the 0.0.0.0/0 route of route table %s is a blackhole (its target is gone)"
                             % rtb)
        gateway = route.get("GatewayId") or ""
        nat = next((route[key] for key in NAT_TARGETS if route.get(key)), None)
        opaque = next(("%s %s" % (key, route[key]) for key in OPAQUE_TARGETS if route.get(key)), None)
        if gateway.startswith("igw-"):
            if subnet_type == "private":
                return self._add(name, FAIL, "subnet %s is declared private but route table %s sends 0.0.0.0/0 to "
                                 "Internet gateway %s; instances without public addresses get no egress: route it "
                                 "through a NAT gateway" % (subnet_id, rtb, gateway))
            self._subnet_kind = "public"
            return self._add(name, OK, "public subnet: 0.0.0.0/0 through Internet gateway %s in %s" % (gateway, rtb))
        if nat:
            if subnet_type == "public":
                return self._add(name, FAIL, "subnet %s is declared public but route table %s sends 0.0.0.0/0 to "
                                 "%s, not to an Internet gateway" % (subnet_id, rtb, nat))
            self._subnet_kind = "private"
            return self._add(name, OK, "private subnet: 0.0.0.0/0 through NAT %s in %s" % (nat, rtb))
        if opaque:
            self._subnet_kind = "private"
            return self._add(name, WARN, "0.0.0.0/0 in %s goes through %s; preflight cannot see whether that "
                             "reaches the Internet (the hosts need it for images and the license)" % (rtb, opaque))
        return self._add(name, FAIL, "0.0.0.0/0 in route table %s goes to %s, which is neither an Internet gateway "
                         "nor a NAT gateway/instance" % (rtb, gateway or json.dumps(route, sort_keys=True)))

    def check_s3_endpoint(self):
        name = "s3_endpoint"
        if self._subnet is None:
            return self._add(name, SKIP, "not checked: no usable subnet")
        service = "com.amazonaws.%s.s3" % self.region
        try:
            endpoints = self._call(self.ec2, "describe_vpc_endpoints",
                                   Filters=[{"Name": "vpc-id", "Values": [self._subnet["VpcId"]]},
                                            {"Name": "service-name", "Values": [service]}])["VpcEndpoints"]
        except ClientError as exc:
            return self._add(name, WARN, "cannot list VPC endpoints: %s" % short_error(exc))
        endpoints = [e for e in endpoints if e.get("State", "available").lower() in ("available", "pending")]
        rtb_id = (self._route_table or {}).get("RouteTableId")
        routed = [e for e in endpoints
                  if e.get("VpcEndpointType") == "Interface" or rtb_id in e.get("RouteTableIds", [])]
        if routed:
            return self._add(name, OK, "S3 endpoint %s serves the subnet" % routed[0]["VpcEndpointId"])
        if self._subnet_kind == "public":
            return self._add(name, OK, "no S3 endpoint; not needed for a public subnet")
        if endpoints:
            return self._add(name, WARN, "S3 gateway endpoint %s exists but is not in route table %s: add the route "
                             "table to it" % (endpoints[0]["VpcEndpointId"], rtb_id))
        return self._add(name, WARN, "no S3 VPC endpoint in %s: the guide recommends one for a private subnet "
                         "(S3 traffic otherwise goes through the NAT); create a gateway endpoint for %s on route "
                         "table %s" % (self._subnet["VpcId"], service, rtb_id))

    def check_key_pair(self, key_name):
        name = "key_pair"
        if not key_name:
            return self._add(name, FAIL, "no key pair name given")
        try:
            pairs = self._call(self.ec2, "describe_key_pairs", KeyNames=[key_name])["KeyPairs"]
        except ClientError as exc:
            if error_code(exc) != "InvalidKeyPair.NotFound":
                return self._add(name, FAIL, "cannot describe key pair %s: %s" % (key_name, short_error(exc)))
            pairs = []
        if not pairs:
            return self._add(name, FAIL, "key pair %s does not exist in %s: create or import it there"
                             % (key_name, self.region))
        return self._add(name, OK, "key pair %s exists in %s" % (key_name, self.region))

    def check_ami(self, ami_id, ami_name_filter=None, docker_versions=None, os_requirements=None):
        """The AMI exists, and its Ubuntu release can run the matrix's Docker versions.

        Without ``ami_id`` the image is the one provisioning would pick: Canonical's newest matching
        ``ami_name_filter``.
        """
        name = "ami"
        if not ami_id:
            if not ami_name_filter:
                return self._add(name, SKIP, "no AMI and no AMI name filter given")
            return self._check_ami_image(self._lookup_canonical(ami_name_filter), docker_versions, os_requirements,
                                         looked_up=ami_name_filter)
        try:
            images = self._call(self.ec2, "describe_images", ImageIds=[ami_id])["Images"]
        except ClientError as exc:
            if error_code(exc) not in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"):
                return self._add(name, FAIL, "cannot describe AMI %s: %s" % (ami_id, short_error(exc)))
            images = []
        if not images:
            return self._add(name, FAIL, "AMI %s does not exist in %s (or is not shared with this account)"
                             % (ami_id, self.region))
        image = images[0]
        if image.get("State", "available") != "available":
            return self._add(name, FAIL, "AMI %s is %s, not available" % (ami_id, image.get("State")))
        return self._check_ami_image(image, docker_versions, os_requirements)

    def _lookup_canonical(self, name_filter):
        images = self._call(self.ec2, "describe_images", Owners=[CANONICAL_OWNER],
                            Filters=[{"Name": "name", "Values": [name_filter]},
                                     {"Name": "virtualization-type", "Values": ["hvm"]}])["Images"]
        images = [i for i in images if i.get("State", "available") == "available"]
        return max(images, key=lambda i: (i.get("CreationDate") or "", i.get("Name") or "")) if images else None

    def _check_ami_image(self, image, docker_versions, os_requirements, looked_up=None):
        name = "ami"
        if image is None:
            return self._add(name, FAIL, "no Canonical AMI in %s matches %s: set circleci_ami_id to an Ubuntu image"
                             % (self.region, looked_up))
        label = "AMI %s (%s)" % (image.get("ImageId"), image.get("Name", ""))
        if looked_up:
            label = "the AMI provisioning picks, " + label
        if not docker_versions:
            return self._add(name, OK, "%s exists" % label)
        versions = ", ".join(str(v) for v in docker_versions)
        release = ubuntu_release_of(image)
        if release is None:
            return self._add(name, WARN, "%s: its name and description give no Ubuntu release; make sure it runs "
                                         "Docker %s (the version matrix's)" % (label, versions))
        problems, unknown = docker_os_problems(release, docker_versions, os_requirements or {})
        if problems:
            return self._add(name, FAIL, "%s is Ubuntu %s: %s; use the matrix's Ubuntu release (leave circleci_ami_id "
                                         "empty) or another circleci_version" % (label, release, "; ".join(problems)))
        if unknown:
            return self._add(name, WARN, "%s is Ubuntu %s; the version matrix has no package data for Docker %s"
                             % (label, release, ", ".join(unknown)))
        return self._add(name, OK, "%s is Ubuntu %s, which runs Docker %s" % (label, release, versions))

    def check_instance_type(self, name, label, instance_type, requirement, strict):
        if not instance_type:
            return self._add(name, SKIP, "no %s instance type given" % label)
        try:
            types = self._call(self.ec2, "describe_instance_types", InstanceTypes=[instance_type])["InstanceTypes"]
        except ClientError as exc:
            if error_code(exc) not in ("InvalidInstanceType", "InvalidParameterValue"):
                return self._add(name, WARN, "cannot describe instance type %s: %s" % (instance_type, short_error(exc)))
            types = []
        if not types:
            return self._add(name, FAIL, "%s is not an instance type offered in %s" % (instance_type, self.region))
        cpus = types[0].get("VCpuInfo", {}).get("DefaultVCpus", 0)
        ram_gb = types[0].get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024.0
        have = "%s has %s vCPU / %g GB RAM" % (instance_type, cpus, ram_gb)
        if not requirement:
            return self._add(name, OK, have)
        gaps = []
        if cpus < requirement.get("cpus", 0):
            gaps.append("%s vCPU (needs %s)" % (cpus, requirement["cpus"]))
        if ram_gb < requirement.get("ram_gb", 0):
            gaps.append("%g GB RAM (needs %s)" % (ram_gb, requirement["ram_gb"]))
        if gaps:
            return self._add(name, FAIL if strict else WARN, "%s %s is below the requirement: %s"
                             % (label, instance_type, ", ".join(gaps)))
        needs = (requirement.get("cpus"), requirement.get("ram_gb"))
        return self._add(name, OK, "%s; needs %s vCPU / %s GB" % ((have,) + needs))

    def check_iam_permissions(self, actions):
        name = "iam_permissions"
        if not actions:
            return self._add(name, WARN, "no action list given: permissions not checked (playbooks/preflight.yml "
                             "passes data/iam_actions.yml)")
        if self.sts is None or self.iam is None:
            return self._add(name, WARN, "no IAM/STS client: permissions not checked")
        try:
            caller = self._call(self.sts, "get_caller_identity")["Arn"]
        except (ClientError, BotoCoreError) as exc:
            return self._add(name, FAIL, "sts:GetCallerIdentity failed (%s): check the AWS credentials"
                             % short_error(exc))
        principal, note = role_arn_from_caller(caller)
        if principal is None:
            return self._add(name, WARN, "%s: permissions not simulated" % note)
        try:
            results = []
            paginator = self.iam.get_paginator("simulate_principal_policy")
            pages = self.retry(lambda: list(paginator.paginate(PolicySourceArn=principal, ActionNames=list(actions))))
            for page in pages():
                results.extend(page.get("EvaluationResults", []))
        # No failure of the simulator may stop preflight.
        except Exception as exc:  # pylint: disable=broad-except
            # e.g. moto answers HTTP 500 (not implemented); a caller without iam:SimulatePrincipalPolicy gets
            # AccessDenied. Neither says anything about the install's permissions.
            return self._add(name, WARN, "IAM policy simulation unavailable for %s (%s): permissions not checked"
                             % (principal, short_error(exc)))
        allowed, denied = evaluate_simulation(results)
        who = principal + (" (%s)" % note if note else "")
        if denied:
            # Simulated for resource "*": a policy scoped to particular ARNs shows as denied here too.
            return self._add(name, FAIL, "%s is denied %d of %d actions the install needs (simulated for resource "
                             "*): %s" % (who, len(denied), len(allowed) + len(denied), _names(denied)))
        return self._add(name, OK, "%s is allowed all %d actions" % (who, len(allowed)))

    # -- local (run where the module runs: the controller) ------------------------------
    def check_license(self, path, content):
        name = "license_file"
        if content:
            return self._add(name, OK, "license given as content (%d bytes)" % len(content))
        if path is None:
            return self._add(name, SKIP, "no license given")
        if not path:
            return self._add(name, FAIL, "no license file given: set the path of the .rli file")
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            return self._add(name, FAIL, "license file %s does not exist (or is not a file)" % path)
        try:
            with open(path, "rb") as handle:
                size = len(handle.read())
        except OSError as exc:
            return self._add(name, FAIL, "license file %s is not readable: %s" % (path, exc.strerror or exc))
        if size == 0:
            return self._add(name, FAIL, "license file %s is empty: download the .rli again" % path)
        return self._add(name, OK, "license file %s is readable (%d bytes)" % (path, size))

    def check_passphrase(self, passphrase):
        name = "passphrase"
        if passphrase is None:
            return self._add(name, SKIP, "no passphrase given")
        if not passphrase:
            return self._add(name, FAIL, "the secret passphrase is empty (the guide: it cannot be empty)")
        if not PASSPHRASE_PATTERN.fullmatch(passphrase):
            bad = sorted({c for c in passphrase if not PASSPHRASE_PATTERN.fullmatch(c)})
            kinds = "spaces" if bad == [" "] else "%d kind(s) of non-alphanumeric character" % len(bad)
            return self._add(name, FAIL, "the secret passphrase must be letters A-Z/a-z and digits only; it has "
                             "%s" % kinds)
        return self._add(name, OK, "the secret passphrase is alphanumeric (%d characters)" % len(passphrase))

    def check_terraform_binary(self, binary):
        name = "terraform_binary"
        if binary is None:
            return self._add(name, SKIP, "no Terraform binary given")
        path = binary if os.path.sep in binary else (self.get_bin_path(binary) if self.get_bin_path else None)
        if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            return self._add(name, FAIL, "Terraform binary %s is not an executable file on this host (PATH is "
                             "searched for a bare name): install Terraform or OpenTofu" % binary)
        rc, out, err = self.run_command([path, "version", "-json"])
        version = None
        if rc == 0:
            try:
                version = json.loads(out).get("terraform_version")
            except ValueError:
                version = None
        if version is None:
            rc, out, err = self.run_command([path, "version"])
            if rc == 0 and out.strip():
                version = out.strip().splitlines()[0]
        if rc != 0 or not version:
            return self._add(name, FAIL, "%s version failed (rc=%s): %s" % (path, rc, (err or out).strip()[:200]))
        return self._add(name, OK, "%s runs: version %s" % (path, version))
