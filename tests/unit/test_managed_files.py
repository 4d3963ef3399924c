"""managed_files: many files written in one module run, only where they differ; check and diff mode.

The ManagedFiles class is driven with a real AnsibleModule (its file helpers do
the mode/owner changes); the last test runs the action and the module through
ansible-playbook once, as a role does (src/template lookup, notify, diff, no_log);
the Molecule scenarios of the roles run it on real hosts.
"""
import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.circleci_server.aws.plugins.module_utils.managed_files import (
    ManagedFiles, ManagedFilesError)
from ansible_collections.circleci_server.aws.plugins.modules.managed_files import FILE_OPTIONS

REPO = Path(__file__).resolve().parents[2]
ME = pwd.getpwuid(os.getuid())[0]
MY_GROUP = grp.getgrgid(os.getgid())[0]


def apply(files, check=False, diff=True):
    with patch_module_args({"files": files, "_ansible_check_mode": check, "_ansible_diff": diff}):
        module = AnsibleModule(
            argument_spec=dict(files=dict(type="list", elements="dict", required=True, options=FILE_OPTIONS)),
            supports_check_mode=True)
    return ManagedFiles(module).apply(module.params["files"])


def mode_of(path):
    return "%04o" % (os.stat(path).st_mode & 0o7777)


@pytest.fixture
def wanted(tmp_path):
    return [
        {"dest": str(tmp_path / "etc"), "state": "directory", "mode": "0750", "owner": ME, "group": MY_GROUP},
        {"dest": str(tmp_path / "etc" / "chrony.conf"), "content": "server 169.254.169.123 iburst\n",
         "mode": "0644", "owner": ME, "group": MY_GROUP},
        {"dest": str(tmp_path / "etc" / "secret"), "content": "s3cr3t\n", "mode": "0600"},
        {"dest": str(tmp_path / "etc" / "leftover"), "state": "absent"},
    ]


def test_first_run_writes_everything_and_the_second_changes_nothing(tmp_path, wanted):
    first = apply(wanted)
    assert first["changed"] and first["changed_paths"] == [e["dest"] for e in wanted[:3]]
    assert (tmp_path / "etc" / "chrony.conf").read_text() == "server 169.254.169.123 iburst\n"
    assert mode_of(tmp_path / "etc") == "0750" and mode_of(tmp_path / "etc" / "secret") == "0600"
    second = apply(wanted)
    assert not second["changed"] and second["changed_paths"] == [] and second["diff"] == []


def test_drift_in_content_mode_and_a_stray_file_is_put_right_and_only_there(tmp_path, wanted):
    apply(wanted)
    conf, secret, leftover = (tmp_path / "etc" / n for n in ("chrony.conf", "secret", "leftover"))
    conf.write_text("server 169.254.169.123 iburst\n# edited by hand\n")
    secret.chmod(0o644)
    leftover.write_text("old\n")
    result = apply(wanted)
    assert result["changed_paths"] == [str(conf), str(secret), str(leftover)]
    assert conf.read_text() == "server 169.254.169.123 iburst\n"
    assert mode_of(secret) == "0600" and not leftover.exists()
    by_dest = {d["before_header"].split()[0]: d for d in result["diff"]}
    assert "# edited by hand" in by_dest[str(conf)]["before"] and "# edited" not in by_dest[str(conf)]["after"]
    assert by_dest[str(secret)]["before"] == {"mode": "0644"} and by_dest[str(secret)]["after"] == {"mode": "0600"}


def test_check_mode_reports_the_changes_and_makes_none(tmp_path, wanted):
    result = apply(wanted, check=True)
    assert result["changed_paths"] == [e["dest"] for e in wanted[:3]]
    assert not (tmp_path / "etc").exists()
    apply(wanted)
    (tmp_path / "etc" / "secret").chmod(0o640)
    result = apply(wanted, check=True)
    assert result["changed_paths"] == [str(tmp_path / "etc" / "secret")]
    assert mode_of(tmp_path / "etc" / "secret") == "0640"


def test_a_link_where_a_file_belongs_is_replaced_by_the_file(tmp_path):
    (tmp_path / "target").write_text("elsewhere\n")
    (tmp_path / "conf").symlink_to(tmp_path / "target")
    apply([{"dest": str(tmp_path / "conf"), "content": "mine\n"}])
    assert not (tmp_path / "conf").is_symlink() and (tmp_path / "conf").read_text() == "mine\n"
    assert (tmp_path / "target").read_text() == "elsewhere\n"


def test_backup_keeps_the_replaced_content(tmp_path):
    (tmp_path / "terraform.tfvars").write_text("prefix = \"old\"\n")
    result = apply([{"dest": str(tmp_path / "terraform.tfvars"), "content": "prefix = \"new\"\n", "backup": True}])
    backup = Path(result["results"][0]["backup_file"])
    assert backup.read_text() == "prefix = \"old\"\n" and backup.parent == tmp_path


def test_json_merge_keeps_keys_set_elsewhere_and_is_converged_the_second_time(tmp_path):
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"log-driver": "journald", "log-opts": {"tag": "x"}}')
    entry = {"dest": str(daemon), "json_merge": {"log-opts": {"max-size": "10m"}, "live-restore": True}}
    first = apply([entry])
    assert first["changed_paths"] == [str(daemon)]
    assert daemon.read_text() == ('{\n  "live-restore": true,\n  "log-driver": "journald",\n'
                                  '  "log-opts": {\n    "max-size": "10m",\n    "tag": "x"\n  }\n}\n')
    assert '"live-restore": true' in first["diff"][0]["after"]
    assert apply([entry])["changed"] is False
    # A missing file is the merge into an empty object; a file that is not a JSON object is named.
    fresh = tmp_path / "new.json"
    assert apply([{"dest": str(fresh), "json_merge": {"a": 1}}])["changed"]
    assert fresh.read_text() == '{\n  "a": 1\n}\n'
    daemon.write_text("[1, 2]")
    with pytest.raises(ManagedFilesError, match="daemon.json holds JSON that is not an object"):
        apply([entry])
    daemon.write_text("{not json")
    with pytest.raises(ManagedFilesError, match="daemon.json is not valid JSON"):
        apply([entry])


def test_a_protected_file_with_other_content_stops_the_run_before_anything_is_written(tmp_path):
    secret = tmp_path / "secret_passphrase"
    secret.write_text("OldPassphrase1\n")
    other = tmp_path / "queue_url"
    refusal = "holds another secret passphrase; confirm the change"
    files = [{"dest": str(other), "content": "https://sqs.example/q\n"},
             {"dest": str(secret), "content": "NewPassphrase2\n", "protected": refusal}]
    with pytest.raises(ManagedFilesError) as raised:
        apply(files)
    # The message names the file and says why; it never shows either passphrase.
    assert str(raised.value) == "%s: %s" % (secret, refusal)
    assert "OldPassphrase1" not in str(raised.value) and "NewPassphrase2" not in str(raised.value)
    assert secret.read_text() == "OldPassphrase1\n" and not other.exists()
    # The same content, a missing file, or an empty message (the change confirmed) are written as usual.
    assert apply([dict(files[1], content="OldPassphrase1\n")])["changed"] is False
    fresh = tmp_path / "fresh"
    assert apply([{"dest": str(fresh), "content": "x\n", "protected": refusal}])["changed"] is True
    assert apply([dict(f, protected="") for f in files])["changed_paths"] == [str(other), str(secret)]
    assert secret.read_text() == "NewPassphrase2\n"


def test_mistakes_are_named(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "keep").write_text("x")
    with pytest.raises(ManagedFilesError, match="dir is a directory, not a file"):
        apply([{"dest": str(tmp_path / "dir"), "content": "x"}])
    with pytest.raises(ManagedFilesError, match="directory that is not empty"):
        apply([{"dest": str(tmp_path / "dir"), "state": "absent"}])
    with pytest.raises(ManagedFilesError, match="the directory of .*nowhere/conf does not exist: list it before"):
        apply([{"dest": str(tmp_path / "nowhere" / "conf"), "content": "x"}])
    assert not (tmp_path / "nowhere").exists()


def run_playbook(tmp_path, extra=()):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=" + sys.executable,
                           str(tmp_path / "play.yml"), "-e", "out=" + str(tmp_path / "out"), *extra],
                          capture_output=True, text=True, env=env, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_a_role_task_renders_its_template_reads_its_file_notifies_and_hides_secrets(tmp_path):
    link = tmp_path / "collections" / "ansible_collections" / "circleci_server" / "aws"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO)
    role = tmp_path / "roles" / "demo"
    for sub in ("tasks", "templates", "files", "handlers"):
        (role / sub).mkdir(parents=True)
    (role / "templates" / "agent.conf.j2").write_text("server {{ server }}\n")
    (role / "files" / "agent.py").write_text("print('agent')\n")
    (role / "handlers" / "main.yml").write_text(
        "- name: Restart agent\n  ansible.builtin.debug: {msg: HANDLER-RAN}\n")
    (role / "tasks" / "main.yml").write_text("""
- name: Write the agent
  circleci_server.aws.managed_files:
    files:
      - {dest: "{{ out }}", state: directory, mode: "0755"}
      - {dest: "{{ out }}/agent.conf", template: agent.conf.j2, mode: "0644"}
      - {dest: "{{ out }}/agent.py", src: agent.py, mode: "0644"}
  register: written
  notify: Restart agent
- name: Write the secret
  circleci_server.aws.managed_files:
    files:
      - {dest: "{{ out }}/secret", content: "{{ secret }}", mode: "0600"}
  no_log: true
- name: Show what changed
  ansible.builtin.debug: {msg: "CHANGED={{ written.changed_paths | map('basename') | join(',') }}"}
""")
    (tmp_path / "play.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [demo]\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "agent.conf").write_text("server 10.0.0.9\n")
    first = run_playbook(tmp_path, ["-e", "server=10.0.0.1", "-e", "secret=TOPSECRET42", "--diff", "-v"])
    assert "CHANGED=agent.conf,agent.py" in first and "HANDLER-RAN" in first
    assert "-server 10.0.0.9" in first and "+server 10.0.0.1" in first  # --diff shows the old and new content
    assert (tmp_path / "out" / "agent.conf").read_text() == "server 10.0.0.1\n"
    assert (tmp_path / "out" / "agent.py").read_text() == "print('agent')\n"
    assert "TOPSECRET42" not in first and (tmp_path / "out" / "secret").read_text() == "TOPSECRET42"
