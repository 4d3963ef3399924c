# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function


class ModuleDocFragment(object):
    # Options shared by the modules that drive Replicated's replicatedctl CLI.
    DOCUMENTATION = r"""
options:
  replicatedctl_path:
    description:
      - Path or name of the C(replicatedctl) executable on the managed host.
      - A bare name is looked up on E(PATH) and in C(/usr/local/bin), where the Replicated installer puts it.
    type: str
    default: replicatedctl
  replicatedctl_host:
    description:
      - Replicated API host, passed as C(--host) to every C(replicatedctl) call.
      - When not set the CLI uses its default, C(unix:///var/run/replicated/replicated-cli.sock).
    type: str
requirements:
  - Replicated 2.x installed on the managed host (it provides C(replicatedctl)).
notes:
  - Secrets are passed to C(replicatedctl) on standard input, never on its command line.
"""

    # Check mode and diff support, the same for every replicatedctl module.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing it.
    support: full
  diff_mode:
    description: Returns the before and after state when run with C(--diff), secrets masked.
    support: full
"""
