"""Command line for the sandbox, used by the Makefile and by hand:

    python -m tests.sandbox.cli setup         # terraform wrapper + provider mirror + collection link
    python -m tests.sandbox.cli base-image    # build (or reuse) the systemd host image
    python -m tests.sandbox.cli clean-hosts   # remove every sandbox container
"""
import argparse
import sys

from . import hosts, terraform
from .paths import ensure_collection_link


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sandbox")
    parser.add_argument("command", choices=["setup", "base-image", "clean-hosts"])
    args = parser.parse_args(argv)
    if args.command == "setup":
        print(f"terraform: {terraform.setup()}")
        print(f"collections path: {ensure_collection_link()}")
    elif args.command == "base-image":
        print(hosts.ensure_base_image())
    elif args.command == "clean-hosts":
        print(f"removed {hosts.remove_all_hosts()} container(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
