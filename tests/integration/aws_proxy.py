"""A counting HTTP proxy in front of moto (test side only).

ansible-inventory runs in a subprocess, so API calls are counted where they
arrive: clients use ``proxy.url`` as their endpoint and every request is
recorded (action, region, access key) before being passed on to moto.

Fault injection: requests signed with ``REJECTED_ACCESS_KEY`` get the answer
real EC2 gives for unknown credentials (HTTP 401, ``AuthFailure``), because
moto accepts any key.

    with CountingProxy(moto.url) as proxy:
        ...  # endpoint_url=proxy.url
        proxy.calls            # [Call(action="DescribeInstances", region="us-east-1", ...)]
        proxy.reset()
"""
from dataclasses import dataclass

from tests.sandbox.aws_proxy_base import AwsProxy

REJECTED_ACCESS_KEY = "testing-rejected-access-key"  # fake on purpose, no real key shape
_AUTH_FAILURE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>AuthFailure</Code>'
    b"<Message>AWS was not able to validate the provided access credentials</Message></Error></Errors>"
    b"<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)


@dataclass(frozen=True)
class Call:
    action: str
    region: str
    service: str
    access_key: str


class CountingProxy(AwsProxy):
    def __init__(self, upstream_url):
        self.calls = []
        super().__init__(upstream_url)

    def reset(self):
        with self.lock:
            self.calls = []

    def actions(self):
        with self.lock:
            return [c.action for c in self.calls]

    def intercept(self, request):
        with self.lock:
            self.calls.append(Call(request.target or request.action, request.region, request.service,
                                   request.access_key))
        if request.access_key == REJECTED_ACCESS_KEY:
            return 401, "text/xml", _AUTH_FAILURE
        return None
