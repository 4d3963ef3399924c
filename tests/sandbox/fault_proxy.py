"""An HTTP proxy in front of moto that injects AWS faults (test side only).

    proxy = FaultProxy(moto.url).start()
    proxy.throttle_every = 3                       # every 3rd request: the service's throttling error
    proxy.throttle_first = 2                       # and/or the first 2 requests
    proxy.fail_once("autoscaling", "CreateAutoScalingGroup", "ValidationError", "injected")
    ... point endpoint_url / the Terraform override at proxy.url ...
    proxy.events                                   # what was injected, with service, action, user agent
    proxy.stop()

Errors have each protocol's real shape, so the SDKs classify them as AWS would:
EC2 `RequestLimitExceeded` (503, EC2 XML), S3 `SlowDown` (503), JSON-protocol
`ThrottlingException` (400), query-protocol `Throttling` (400, ErrorResponse XML).
"""
from .aws_proxy_base import AwsProxy


def throttling_error(service, json_protocol):
    if json_protocol:
        return 400, "application/x-amz-json-1.1", b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
    if service == "ec2":
        return 503, "text/xml", (b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                                 b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
                                 b"</Error></Errors><RequestID>fault-proxy</RequestID></Response>")
    if service == "s3":
        return 503, "application/xml", (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                                        b"<Message>Please reduce your request rate.</Message>"
                                        b"<RequestId>fault-proxy</RequestId></Error>")
    return 400, "text/xml", (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                             b"<Message>Rate exceeded</Message></Error>"
                             b"<RequestId>fault-proxy</RequestId></ErrorResponse>")


def client_error(service, code, message, json_protocol):
    if json_protocol:
        return 400, "application/x-amz-json-1.1", ('{"__type": "%s", "message": "%s"}' % (code, message)).encode()
    if service == "ec2":
        return 400, "text/xml", (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
                                 f"</Error></Errors><RequestID>fault-proxy</RequestID></Response>").encode()
    return 400, "text/xml", (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
                             f"</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>").encode()


class FaultProxy(AwsProxy):
    upstream_timeout = 120

    def __init__(self, upstream, host="127.0.0.1", port=0):
        self.throttle_every = 0
        self.throttle_first = 0
        self.failures = []  # [service, action, code, message, remaining]
        self.events = []
        self.requests = 0
        super().__init__(upstream, host, port)

    def fail_once(self, service, action, code, message):
        with self.lock:
            self.failures.append([service, action, code, message, 1])

    def reset(self):
        with self.lock:
            self.throttle_every, self.throttle_first, self.failures, self.events, self.requests = 0, 0, [], [], 0

    def injected(self, kind=None, agent=None):
        return [e for e in self.events if (kind is None or e["kind"] == kind)
                and (agent is None or agent.lower() in e["user_agent"].lower())]

    def _decide(self, service, action, json_protocol, user_agent):
        with self.lock:
            self.requests += 1
            for failure in self.failures:
                if failure[4] > 0 and failure[0] == service and failure[1] == action:
                    failure[4] -= 1
                    self.events.append({"kind": "failure", "service": service, "action": action,
                                        "user_agent": user_agent})
                    return client_error(service, failure[2], failure[3], json_protocol)
            every = self.throttle_every and self.requests % self.throttle_every == 0
            if every or self.requests <= self.throttle_first:
                self.events.append({"kind": "throttle", "service": service, "action": action,
                                    "user_agent": user_agent})
                return throttling_error(service, json_protocol)
        return None

    def intercept(self, request):
        return self._decide(request.service or "unknown", request.action, request.json_protocol, request.user_agent)
