#cloud-config
# circleci_server.aws: a new Nomad client configures itself (docs/fleet.md "How a new client joins").
# circleci_bootstrap.py reads the bootstrap bundle from S3 with the instance profile, checks it,
# runs the nomad_client role locally and completes the launching lifecycle hook.
# Log: /var/log/circleci-bootstrap.log; outcome: instance tag circleci:bootstrap. No secret here.
# Terraform gzips this document (cloud-init reads gzip user data): EC2 allows 16 KB.
write_files:
  - path: /usr/local/lib/circleci/circleci_aws.py
    permissions: "0644"
    owner: root:root
    content: |
      ${indent(6, aws_module)}
  - path: /usr/local/lib/circleci/circleci_bootstrap.py
    permissions: "0644"
    owner: root:root
    content: |
      ${indent(6, bootstrap)}
  - path: /etc/circleci/bootstrap.json
    permissions: "0644"
    owner: root:root
    content: ${jsonencode(settings)}
runcmd:
  - [python3, /usr/local/lib/circleci/circleci_bootstrap.py, --config, /etc/circleci/bootstrap.json]
