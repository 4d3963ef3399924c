"""The install prefix has one rule, in the input contract (data/inputs.yml), which every
entry point checks first; Terraform's variables.tf (which cannot read it) must agree.
Its length limit comes from the longest AWS name built from it."""
import re

import pytest
import yaml

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


CONTRACT = yaml.safe_load((REPO_ROOT / "data" / "inputs.yml").read_text())["inputs"]
RULES = {
    # The contract's patterns are matched whole (fullmatch), as the check_inputs action does.
    "inputs.yml": re.compile("^(?:%s)\\Z" % CONTRACT["circleci_prefix"]["pattern"]),
    "variables.tf": _rule("roles/infrastructure/files/terraform/variables.tf", r'regex\("([^"]+)", var\.prefix\)'),
}


def test_no_other_copy_of_the_rule():
    for path in ("playbooks/tasks/check_inputs.yml", "roles/infrastructure/tasks/validate.yml"):
        assert "prefix is match" not in (REPO_ROOT / path).read_text(), path


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
def test_the_contract_and_terraform_agree(sample):
    verdicts = {name: bool(rule.match(sample)) for name, rule in RULES.items()}
    assert len(set(verdicts.values())) == 1, verdicts


def test_the_limit_is_the_longest_prefix_whose_names_fit_aws():
    accepted = [n for n in range(1, 80) if RULES["inputs.yml"].match("a" * n)]
    longest = max(accepted)
    assert all(len(name) <= limit for name, limit in longest_name("a" * longest))
    assert any(len(name) > limit for name, limit in longest_name("a" * (longest + 1)))
    assert longest == 36
    # 21-24 characters: once accepted by the input checks and refused by the role (issue 14's bug).
    assert all(RULES[name].match("a" * 24) for name in RULES)
