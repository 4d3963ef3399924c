"""The install prefix has one rule, checked in three places that must agree:
the input checks (playbooks/tasks/check_inputs.yml), the infrastructure role
(tasks/validate.yml) and Terraform (variables.tf). Its length limit comes from
the longest AWS name built from it."""
import re

import pytest

from tests.sandbox.paths import REPO_ROOT

S3_BUCKET_NAME_MAX = 63  # S3 bucket naming rules
IAM_ROLE_NAME_MAX = 64
SQS_QUEUE_NAME_MAX = 80
VPC_ID_HEX_DIGITS = 17  # vpc-0123456789abcdef0


def _rule(path, pattern):
    text = (REPO_ROOT / path).read_text()
    found = re.findall(pattern, text)
    assert len(found) == 1, f"{path}: expected one prefix rule, found {found}"
    return re.compile(found[0])


RULES = {
    "check_inputs.yml": _rule("playbooks/tasks/check_inputs.yml", r"circleci_prefix is match\('([^']+)'\)"),
    "validate.yml": _rule("roles/infrastructure/tasks/validate.yml", r"infrastructure_prefix is match\('([^']+)'\)"),
    "variables.tf": _rule("roles/infrastructure/files/terraform/variables.tf", r'regex\("([^"]+)", var\.prefix\)'),
}


def longest_name(prefix):
    """The names files/terraform builds from the prefix, with the AWS limit of each."""
    vpc_hex = "0" * VPC_ID_HEX_DIGITS
    return [
        (f"{prefix}-circleci-{vpc_hex}", S3_BUCKET_NAME_MAX),
        (f"{prefix}-circleci", IAM_ROLE_NAME_MAX),
        (f"{prefix}-nomad-client", IAM_ROLE_NAME_MAX),
        (f"{prefix}-shutdown-queue", SQS_QUEUE_NAME_MAX),
    ]


SAMPLES = ["a", "ci", "ci-prod", "a" * 20, "a" * 21, "a" * 24, "b" + "-x" * 17 + "z", "a" * 36, "a" * 37,
           "Prod", "1ci", "-ci", "ci-", "ci_prod", "ci.prod", "", "ci prod"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_three_checks_agree(sample):
    verdicts = {name: bool(rule.match(sample)) for name, rule in RULES.items()}
    assert len(set(verdicts.values())) == 1, verdicts


def test_the_limit_is_the_longest_prefix_whose_names_fit_aws():
    accepted = [n for n in range(1, 80) if RULES["check_inputs.yml"].match("a" * n)]
    longest = max(accepted)
    assert all(len(name) <= limit for name, limit in longest_name("a" * longest))
    assert any(len(name) > limit for name, limit in longest_name("a" * (longest + 1)))
    assert longest == 36
    # 21-24 characters: once accepted by the input checks and refused by the role (the bug this guards).
    assert all(RULES[name].match("a" * 24) for name in RULES)
