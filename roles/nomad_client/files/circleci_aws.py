"""circleci_aws: the instance metadata (IMDSv2) and signed AWS API calls the Nomad clients' own agents make.

Shared by circleci_nomad_drain.py (scale-in drain) and circleci_bootstrap.py (first boot),
with the two things both agents do alike (read their JSON settings, log to stderr and a file):
both run on the host's python3 without an SDK, so this file is stdlib only and Python >= 3.5
(Ubuntu 16.04's python3: no f-strings, no variable annotations, json.loads on str only).
The nomad_client role installs it next to the drain agent; the launch template's user data
writes the same file (Terraform reads it from the role) before the bootstrap runs.

* IMDSv2: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds, then
  X-aws-ec2-metadata-token on each read; credentials of the instance profile from
  meta-data/iam/security-credentials/<role>
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html).
* Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html);
  S3 additionally signs x-amz-content-sha256
  (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
* Query API calls (Auto Scaling 2011-01-01, EC2 2016-11-15) and S3 GetObject.

An ``endpoint`` overrides every service's URL (the sandbox's AWS stand-in; S3 then path-style);
empty means AWS's regional endpoints.
"""
import datetime
import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TOKEN_TTL_SECONDS = 21600
AUTOSCALING_API_VERSION = "2011-01-01"
EC2_API_VERSION = "2016-11-15"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


class AwsError(Exception):
    """An AWS or instance metadata call failed; the message says which and why."""


def direct_opener():
    # IMDS and local agents are never reached through an HTTP proxy.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def text_of(response):
    return response.read().decode("utf-8")


# --- instance metadata (IMDSv2) ------------------------------------------------


class InstanceMetadata:
    def __init__(self, base_url, timeout=2):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.opener = direct_opener()
        self._token = None
        self._token_expires = 0

    def token(self):
        if self._token is None or time.time() > self._token_expires:
            request = urllib.request.Request(
                self.base_url + "/latest/api/token", data=b"", method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
            with self.opener.open(request, timeout=self.timeout) as response:
                self._token = text_of(response).strip()
            self._token_expires = time.time() + TOKEN_TTL_SECONDS - 60
        return self._token

    def get(self, path, missing_ok=False):
        """Text of /latest/<path>; None for a 404 when missing_ok."""
        request = urllib.request.Request(self.base_url + "/latest/" + path.lstrip("/"),
                                         headers={"X-aws-ec2-metadata-token": self.token()})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return text_of(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # token expired or revoked: fetch a new one next time
                self._token = None
            if exc.code == 404 and missing_ok:
                return None
            raise

    def target_lifecycle_state(self):
        state = self.get("meta-data/autoscaling/target-lifecycle-state", missing_ok=True)
        return state.strip() if state else None

    def instance_id(self):
        return self.get("meta-data/instance-id").strip()

    def identity(self):
        """The instance identity document (region, accountId, instanceId, privateIp, ...)."""
        return json.loads(self.get("dynamic/instance-identity/document"))

    def region(self):
        return self.identity()["region"]

    def tag(self, key):
        """An instance tag, when the launch template allows tags in metadata; else None."""
        value = self.get("meta-data/tags/instance/" + urllib.parse.quote(key, safe=":"), missing_ok=True)
        return value.strip() if value else None

    def credentials(self):
        roles = self.get("meta-data/iam/security-credentials/", missing_ok=True)
        if not roles or not roles.strip():
            raise AwsError("the instance has no instance profile (iam/security-credentials is empty): "
                           "it cannot call AWS")
        role = roles.strip().splitlines()[0]
        data = json.loads(self.get("meta-data/iam/security-credentials/" + role))
        return {"access_key": data["AccessKeyId"], "secret_key": data["SecretAccessKey"],
                "token": data.get("Token", "")}


# --- Signature Version 4 ---------------------------------------------------------


def _hmac(key, message):
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _quote(value, safe="-_.~"):
    return urllib.parse.quote(value, safe=safe)


def sigv4_headers(method, url, body, region, service, credentials, now=None, headers=None):
    """Headers (Authorization, X-Amz-Date, ...) signing one request with SigV4.

    ``headers``: the request's own headers to sign (default: the Query API's form Content-Type).
    """
    now = now or datetime.datetime.utcnow()
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    headers = dict({"Content-Type": FORM_CONTENT_TYPE} if headers is None else headers)
    headers.update({"Host": parts.netloc, "X-Amz-Date": amz_date})
    if credentials.get("token"):
        headers["X-Amz-Security-Token"] = credentials["token"]
    signed = sorted((name.lower(), " ".join(str(value).split())) for name, value in headers.items())
    canonical_headers = "".join("{}:{}\n".format(name, value) for name, value in signed)
    signed_headers = ";".join(pair[0] for pair in signed)
    query = "&".join("{}={}".format(_quote(k), _quote(v))
                     for k, v in sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)))
    canonical_request = "\n".join([
        method, _quote(urllib.parse.unquote(parts.path or "/"), safe="/-_.~"), query,
        canonical_headers, signed_headers,
        headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()])
    scope = "/".join([date_stamp, region, service, "aws4_request"])
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    key = _hmac(("AWS4" + credentials["secret_key"]).encode("utf-8"), date_stamp)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}".format(
        credentials["access_key"], scope, signed_headers, signature)
    return headers


def _error_message(detail):
    message = re.search(r"<Message>(.*?)</Message>", detail, re.S)
    code = re.search(r"<Code>(.*?)</Code>", detail, re.S)
    if message:
        return (code.group(1) + ": " if code else "") + message.group(1)
    return detail[:300]


class QueryApi:
    """One AWS Query API service (form POST, XML answer), signed with the instance profile's credentials."""

    service = ""
    version = ""

    def __init__(self, endpoint, region, credentials_source, timeout=15):
        self.endpoint = endpoint or "https://{}.{}.amazonaws.com/".format(self.service, region)
        if urllib.parse.urlsplit(self.endpoint).path == "":
            self.endpoint += "/"
        self.region = region
        self.credentials_source = credentials_source
        self.timeout = timeout
        # The default opener: AWS is reached through the proxy of the environment, if any.
        self.opener = urllib.request.build_opener()

    def call(self, action, params):
        form = dict(params, Action=action, Version=self.version)
        body = urllib.parse.urlencode(sorted(form.items())).encode("utf-8")
        headers = sigv4_headers("POST", self.endpoint, body, self.region, self.service,
                                self.credentials_source())
        del headers["Host"]  # urllib sets it from the URL (the same value)
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return text_of(response)
        except urllib.error.HTTPError as exc:
            raise AwsError("{} failed (HTTP {}): {}".format(
                action, exc.code, _error_message(exc.read().decode("utf-8", "replace")))) from None


class AutoScaling(QueryApi):
    """The Auto Scaling actions the clients' agents need."""

    service = "autoscaling"
    version = AUTOSCALING_API_VERSION

    def heartbeat(self, asg_name, hook_name, instance_id):
        return self.call("RecordLifecycleActionHeartbeat", {
            "AutoScalingGroupName": asg_name, "LifecycleHookName": hook_name, "InstanceId": instance_id})

    def complete(self, asg_name, hook_name, instance_id, result="CONTINUE"):
        return self.call("CompleteLifecycleAction", {
            "AutoScalingGroupName": asg_name, "LifecycleHookName": hook_name, "InstanceId": instance_id,
            "LifecycleActionResult": result})

    def lifecycle_state(self, instance_id):
        """The instance's LifecycleState in its group (Pending:Wait, InService, ...), None outside any group."""
        answer = self.call("DescribeAutoScalingInstances", {"InstanceIds.member.1": instance_id})
        state = re.search(r"<LifecycleState>(.*?)</LifecycleState>", answer)
        return state.group(1) if state else None


class Ec2(QueryApi):
    service = "ec2"
    version = EC2_API_VERSION

    def create_tags(self, resource_id, tags):
        params = {"ResourceId.1": resource_id}
        for number, key in enumerate(sorted(tags), 1):
            params["Tag.{}.Key".format(number)] = key
            params["Tag.{}.Value".format(number)] = tags[key]
        return self.call("CreateTags", params)


class S3:
    """GetObject, signed; virtual-hosted URLs on AWS, path-style behind an endpoint override."""

    def __init__(self, endpoint, region, credentials_source, timeout=60):
        self.endpoint = endpoint.rstrip("/") if endpoint else ""
        self.region = region
        self.credentials_source = credentials_source
        self.timeout = timeout
        self.opener = urllib.request.build_opener()

    def url(self, bucket, key):
        path = "/" + _quote(key, safe="/-_.~")
        if self.endpoint:
            return "{}/{}{}".format(self.endpoint, bucket, path)
        return "https://{}.s3.{}.amazonaws.com{}".format(bucket, self.region, path)

    def get(self, bucket, key):
        url = self.url(bucket, key)
        headers = sigv4_headers("GET", url, b"", self.region, "s3", self.credentials_source(),
                                headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
        del headers["Host"]
        request = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise AwsError("s3://{}/{}: HTTP {}: {}".format(
                bucket, key, exc.code, _error_message(exc.read().decode("utf-8", "replace")))) from None


def load_agent_config(path, defaults):
    """The agent's JSON settings file; a key not in ``defaults`` (a typo) stops the agent. No path: {}."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise SystemExit("{}: unknown setting(s) {}".format(path, ", ".join(unknown)))
    return config


def setup_agent_logging(logger, log_file):
    """Log to stderr (the journal, or cloud-init's output log) and to ``log_file``.

    An unwritable log file costs only the file: the agent must still drain or bootstrap.
    WatchedFileHandler reopens the file after logrotate moved it.
    """
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
            handlers.append(logging.handlers.WatchedFileHandler(log_file))
        except OSError as exc:
            print("{}: cannot write {}: {}".format(logger.name, log_file, exc), file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
