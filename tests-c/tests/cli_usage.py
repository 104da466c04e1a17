"""The command's conventions, through the real binary: `--help` on every command (stdout,
status 0), `--version`, usage errors on stderr with status 2 and nothing on stdout (and
the program of a bad `run` is never started), and completion scripts that shells load."""
import os
import re
import shutil
import subprocess
from harness import *

COMMANDS = ["run", "report", "rules", "completions"]


def cli(*args, env=None, **kw):
    p = subprocess.run([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=env, **kw)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def usage_error(args, what, mention=None, message=True, usage=True):
    """A usage error: status 2, nothing on stdout, on stderr an `error:` line (unless
    `message` is false: a bare command prints its help) and the usage (clap leaves the
    usage out for a bad value of an option, and points to --help instead)."""
    rc, out, err = cli(*args)
    eq(rc, 2, f"{what}: exit status")
    eq(out, "", f"{what}: nothing on stdout")
    check(err.startswith("error:") == message, f"{what}: {'an' if message else 'no'} error line:\n{err}")
    hint = "Usage: acl-ipc-guard" if usage else "For more information, try '--help'."
    check(hint in err, f"{what}: stderr has {hint!r}:\n{err}")
    if mention:
        check(mention in err, f"{what}: stderr names {mention!r}:\n{err}")


# --help, at the top and on every command (and `help CMD`), on stdout with status 0.
for args in [["--help"], ["-h"], ["help"]]:
    rc, out, err = cli(*args)
    eq((rc, err), (0, ""), f"{args}: status and stderr")
    check(out.startswith("Validating, auditing shim") and "Usage: acl-ipc-guard [OPTIONS] <COMMAND>" in out,
          f"{args}: usage on stdout:\n{out}")
    for c in COMMANDS:
        check(re.search(rf"^  {c} ", out, re.M), f"{args}: lists {c}")
for c in COMMANDS:
    for args in [[c, "--help"], [c, "-h"], ["help", c]]:
        rc, out, err = cli(*args)
        eq((rc, err), (0, ""), f"{args}: status and stderr")
        check(f"Usage: acl-ipc-guard {c}" in out, f"{args}: usage on stdout:\n{out}")
# Every documented option is in the help.
for c, options in {"run": ["--mode", "--log", "--rules", "--exitcode", "-- <PROGRAM>"],
                   "report": ["--json", "<LOG>"], "rules": ["--json"]}.items():
    out = cli(c, "--help")[1]
    for o in options:
        check(o in out, f"{c} --help names {o}:\n{out}")

# --version: the workspace's version.
with open(os.path.join(SOURCE, "Cargo.toml"), encoding="utf-8") as f:
    ws = re.search(r'^\[workspace\.package\]\n(?:.*\n)*?version = "([^"]+)"', f.read(), re.M)
check(ws, "Cargo.toml has [workspace.package] version")
for args in [["--version"], ["-V"]]:
    eq(cli(*args), (0, f"acl-ipc-guard {ws.group(1)}\n", ""), f"{args}")

# Usage errors: stderr, status 2, stdout empty.
# No command at all: the whole help, on stderr, as the usage error it is.
usage_error([], "no command", "Commands:", message=False)
usage_error(["frobnicate"], "unknown command", "frobnicate")
usage_error(["--frob"], "unknown top-level option", "--frob")
for c in ["run", "report", "rules"]:
    usage_error([c, "--frob"], f"{c}: unknown option", "--frob")
usage_error(["report"], "report without a log", "<LOG>")
usage_error(["rules", "extra"], "rules with an argument", "extra")
usage_error(["completions"], "completions without a shell", "<SHELL>")
usage_error(["completions", "tcsh"], "completions for an unknown shell", "tcsh", usage=False)

# A run with a bad option never starts its program.
work = Workdir()
marker = work.file("started")
for args, what, usage in [(["--mode", "loud"], "bad mode", False),
                          (["--exitcode", "300"], "exitcode out of range", False),
                          (["--exitcode", "x"], "exitcode not a number", False),
                          (["--bogus"], "unknown option", True)]:
    usage_error(["run", *args, "--", "/bin/sh", "-c", f"touch {marker}"], f"run {what}", args[0], usage=usage)
    check(not os.path.exists(marker), f"run {what}: the program was not started")
usage_error(["run", "/bin/true"], "run without --")
usage_error(["run", "--"], "run with nothing after --", "<PROGRAM>")
# The same switch twice: the last one counts (as before clap).
rc, out, err = cli("run", "--mode", "enforce", "--mode", "off", "--", "/bin/sh", "-c", "echo $ACL_IPC_GUARD_MODE",
                   env=base_env(work))
eq((rc, out), (0, "off\n"), f"run --mode twice ({err})")
work.cleanup()

# Completions: bash loads the script and completes commands and option values with it.
rc, script, err = cli("completions", "bash")
eq((rc, err), (0, ""), "completions bash: status and stderr")
p = subprocess.run(["bash", "-c", f"source <({CLI} completions bash) && complete -p acl-ipc-guard"],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
eq((p.returncode, p.stderr), (0, ""), "bash sources the script")
m = re.search(r"-F (\S+) acl-ipc-guard$", p.stdout.strip())
check(m, f"complete -p names a function: {p.stdout!r}")
func = m.group(1)
complete = f"""source <({CLI} completions bash)
comp() {{ COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
  COMPREPLY=(); {func} acl-ipc-guard "${{@: -1}}" "${{@: -2:1}}"; echo "${{COMPREPLY[*]}}"; }}
comp acl-ipc-guard rep
comp acl-ipc-guard run --exi
comp acl-ipc-guard run --mode ''
comp acl-ipc-guard completions f
"""
p = subprocess.run(["bash", "-c", complete], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
eq(p.stdout.splitlines(), ["report", "--exitcode", "off audit enforce abort", "fish"],
   f"bash completes with the script (stderr: {p.stderr})")

# zsh and fish: a script naming the command and its subcommands; checked by the shell
# itself where it is installed.
for shell, checker in [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])]:
    rc, script, err = cli("completions", shell)
    eq((rc, err), (0, ""), f"completions {shell}: status and stderr")
    check(script.strip() and "acl-ipc-guard" in script and all(c in script for c in COMMANDS),
          f"completions {shell}: a script for the command")
    if shutil.which(checker[0]):
        w = Workdir()
        path = w.file(f"acl-ipc-guard.{shell}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        p = subprocess.run(checker + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        eq((p.returncode, p.stderr), (0, ""), f"{shell} parses the script")
        w.cleanup()

done("cli_usage")
