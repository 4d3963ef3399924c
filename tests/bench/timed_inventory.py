"""`ansible-inventory` with stopwatches (benchmark only; run as `python timed_inventory.py <ansible-inventory args>`).

The bench needs to tell apart, inside one CLI run, the three things its wall time
is made of:

  load    InventoryManager parsing the source: the inventory plugin's whole run
          (AWS calls, building hosts, groups and variables, cache). Every
          ansible-playbook run waits for exactly this before its first play.
  api     of that, the time spent in AWS requests (botocore Endpoint.make_request:
          HTTP round trip + response parsing, the same work raw boto3 does)
  output  `--list` turning every host's variables into JSON: the CLI's cost,
          the same for any plugin that sets the same variables

The figures go to the JSON file named by BENCH_TIMINGS when the CLI exits.
Nothing is changed in what ansible-inventory does; the wrappers only time.
"""
import atexit
import json
import os
import sys
import time

STARTED = time.monotonic()
TIMINGS = {"load": 0.0, "api": 0.0, "api_requests": 0, "output": 0.0}


def _timed(owner, name, key, count_key=None):
    original = getattr(owner, name)
    is_static = isinstance(vars(owner).get(name), staticmethod)

    def wrapper(*args, **kwargs):
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            TIMINGS[key] += time.monotonic() - start
            if count_key:
                TIMINGS[count_key] += 1

    setattr(owner, name, staticmethod(wrapper) if is_static else wrapper)


def _write():
    TIMINGS["process"] = time.monotonic() - STARTED
    path = os.environ.get("BENCH_TIMINGS")
    if path:
        with open(path, "w") as handle:
            json.dump(TIMINGS, handle)


def main():
    import botocore.endpoint
    from ansible.cli.inventory import InventoryCLI, main as inventory_main
    from ansible.inventory.manager import InventoryManager

    _timed(InventoryManager, "parse_sources", "load")
    _timed(botocore.endpoint.Endpoint, "make_request", "api", "api_requests")
    _timed(InventoryCLI, "json_inventory", "output")  # gathering every host's variables
    _timed(InventoryCLI, "dump", "output")  # and encoding them
    atexit.register(_write)
    sys.argv[0] = "ansible-inventory"
    inventory_main()


if __name__ == "__main__":
    main()
