"""The dry-run report callback, fed the results a --check --diff run gives it."""
from types import SimpleNamespace

from ansible_collections.circleci_server.aws.plugins.callback.dry_run_report import CallbackModule, parse_plan

PLAN = """
Terraform will perform the following actions:

  # aws_instance.services must be replaced
-/+ resource "aws_instance" "services" {
  # aws_launch_template.nomad_client will be updated in-place
  ~ resource "aws_launch_template" "nomad_client" {
  # aws_route53_record.app[0] will be created
  + resource "aws_route53_record" "app" {
  # aws_sqs_queue.shutdown will be destroyed
  - resource "aws_sqs_queue" "shutdown" {

Plan: 2 to add, 1 to change, 2 to destroy.
"""


def result(host, action, res, name="a task"):
    task = SimpleNamespace(action=action, get_name=lambda: name)
    return SimpleNamespace(_host=SimpleNamespace(get_name=lambda: host), _task=task, _result=res)


def report(results, failed=()):
    callback = CallbackModule()
    callback._check_mode = True
    for item in results:
        callback.v2_runner_on_ok(item)
    for item in failed:
        callback.v2_runner_on_failed(item)
    return callback.report()


def test_plan_is_parsed_per_resource():
    assert parse_plan(PLAN) == [
        {"address": "aws_instance.services", "action": "replace"},
        {"address": "aws_launch_template.nomad_client", "action": "update"},
        {"address": "aws_route53_record.app[0]", "action": "create"},
        {"address": "aws_sqs_queue.shutdown", "action": "destroy"},
    ]


def test_converged_install_reports_nothing_to_change():
    text = report([
        result("localhost", "community.general.terraform", {"changed": False, "stdout": "No changes."}),
        result("i-svc", "circleci_server.aws.managed_files", {"changed": False}),
        result("i-cli", "ansible.builtin.copy", {"changed": False}),
        result("i-svc", "circleci_server.aws.replicated_app_config", {"changed": False}),
    ])
    assert "no change to any AWS resource" in text
    assert "i-svc: nothing to change" in text and "i-cli: nothing to change" in text
    assert "App settings: no change" in text and "App restart: no" in text


def test_drift_is_named_with_diffs_masked_settings_and_the_restart():
    text = report([
        result("localhost", "community.general.terraform", {"changed": True, "stdout": PLAN}),
        result("i-cli", "ansible.builtin.copy", {"changed": True, "diff": [{
            "before": "datacenter = \"us-east-1\"\nname = \"hand-edited\"\n",
            "after": "datacenter = \"us-east-1\"\nname = \"i-cli\"\n",
            "before_header": "/etc/nomad/config.hcl", "after_header": "/etc/nomad/config.hcl"}]},
            name="nomad_client : Write the Nomad agent configuration"),
        result("i-svc", "circleci_server.aws.replicated_app_config", {"changed": True, "diff": {
            "before": {"hostname": "old.example.com", "secret_passphrase": "********"},
            "after": {"hostname": "new.example.com", "secret_passphrase": "******** (changed)"}}},
            name="Apply the app settings"),
        result("i-svc", "circleci_server.aws.replicated_app", {"changed": True, "diff": {
            "before": {"state": "started"}, "after": {"state": "restarted"}}}, name="Start the app"),
        result("i-svc", "ansible.builtin.copy", {"changed": True, "censored": "the output has been hidden"},
               name="Write the passphrase"),
    ])
    assert "!! REPLACE aws_instance.services" in text and "REPLACEMENT" in text
    assert "~ update  aws_launch_template.nomad_client" in text
    assert "- DESTROY aws_sqs_queue.shutdown" in text and "+ create  aws_route53_record.app[0]" in text
    assert "[i-cli] nomad_client : Write the Nomad agent configuration" in text
    assert '-name = "hand-edited"' in text and '+name = "i-cli"' in text
    assert "hostname: 'old.example.com' -> 'new.example.com'" in text
    assert "secret_passphrase: '********' -> '******** (changed)'" in text
    assert "App restart: YES" in text
    assert "(details hidden: no_log)" in text


def test_notes_and_failures_are_reported():
    text = report([result("localhost", "ansible.builtin.set_fact",
                          {"changed": False, "ansible_facts": {"circleci_dry_run_note": "hosts do not exist yet"}})],
                  failed=[result("i-svc", "ansible.builtin.command", {"msg": "boom"}, name="x")])
    assert "NOTE: hosts do not exist yet" in text and "i-svc: x: boom" in text


def test_silent_outside_check_mode():
    callback = CallbackModule()
    callback._check_mode = False
    callback.v2_runner_on_ok(result("h", "ansible.builtin.copy", {"changed": True}))
    assert callback.changes == {}


class RecordingDisplay:
    def __init__(self):
        self.calls = []

    def display(self, msg, stderr=False, **_kwargs):
        self.calls.append((msg, stderr))


def test_report_goes_to_stderr_under_a_json_stdout_callback(monkeypatch):
    from ansible_collections.circleci_server.aws.plugins.callback import dry_run_report

    for stdout_callback, to_stderr in (("default", False), ("ansible.posix.json", True), ("json", True)):
        monkeypatch.setattr(dry_run_report.C, "DEFAULT_STDOUT_CALLBACK", stdout_callback)
        callback = CallbackModule()
        callback._check_mode = True
        callback._display = RecordingDisplay()
        callback.v2_playbook_on_stats(None)
        assert [(("DRY RUN REPORT" in msg), stderr) for msg, stderr in callback._display.calls] == [(True, to_stderr)]
