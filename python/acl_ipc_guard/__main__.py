"""``python -m acl_ipc_guard ARGS…`` is ``acl-ipc-guard ARGS…``: it replaces this process
with the bundled command, so the exit status (and, under ``run``, the process tree) is the
same as calling the command itself."""
import os
import sys

from . import bin_path


def main():
    try:
        command = bin_path()
    except FileNotFoundError as e:
        print(f"acl-ipc-guard: {e}", file=sys.stderr)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(command, [command, *sys.argv[1:]])
    except OSError as e:
        print(f"acl-ipc-guard: cannot run {command}: {e}", file=sys.stderr)
        return 126


if __name__ == "__main__":
    sys.exit(main())
