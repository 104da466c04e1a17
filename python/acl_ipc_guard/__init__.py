"""acl-ipc-guard from pip: where its command and libraries were installed.

The wheel puts the command ``acl-ipc-guard`` in the environment's ``bin/`` and the shim
``libacl_ipc_guard.so`` and its rtld-audit module ``libacl_ipc_guard_audit.so`` in this
package. ``acl-ipc-guard run -- PROGRAM`` (or ``python -m acl_ipc_guard run -- PROGRAM``)
sets ``LD_PRELOAD`` and ``LD_AUDIT`` to them; to set them yourself::

    LD_PRELOAD=$(python -c 'import acl_ipc_guard; print(acl_ipc_guard.library_path())') ./app
"""
import os
from importlib.metadata import PackageNotFoundError, distribution

__all__ = ["library_path", "audit_library_path", "bin_path", "__version__"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_BIN = "acl-ipc-guard"


def _distribution():
    """pip's record of the install this package came from; None if this copy was not
    installed by pip (a source checkout on PYTHONPATH, say), even if another one was."""
    try:
        dist = distribution("acl-ipc-guard")
    except PackageNotFoundError:
        return None
    mine = os.path.join(_HERE, "__init__.py")
    ours = os.path.abspath(str(dist.locate_file("acl_ipc_guard/__init__.py")))
    return dist if os.path.exists(ours) and os.path.samefile(ours, mine) else None


_DIST = _distribution()
__version__ = _DIST.version if _DIST else "unknown"


def _bundled(name):
    path = os.path.join(_HERE, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{name} is not in {_HERE}: this copy of acl_ipc_guard was not installed from the wheel "
            "(build one with scripts/wheel.sh)")
    return path


def library_path():
    """The absolute path of the bundled shim ``libacl_ipc_guard.so`` (for ``LD_PRELOAD``)."""
    return _bundled("libacl_ipc_guard.so")


def audit_library_path():
    """The absolute path of the bundled rtld-audit module ``libacl_ipc_guard_audit.so`` (for
    ``LD_AUDIT``: it routes the calls of programs that find the runtime with dlsym, such as
    ctypes, through the shim)."""
    return _bundled("libacl_ipc_guard_audit.so")


def _bin_candidates():
    """Where the command may be: where pip recorded it, then where pip puts it relative to
    this package, the layouts the command itself searches the other way round:
    PREFIX/bin for PREFIX/lib/pythonX.Y/site-packages (a venv, --user, --prefix, a system
    install), TARGET/bin for TARGET (--target, whose record names a directory gone)."""
    for f in (_DIST.files or ()) if _DIST else ():
        if f.name == _BIN and f.parent.name == "bin":
            yield os.path.abspath(str(_DIST.locate_file(f)))
    site = os.path.dirname(_HERE)
    yield os.path.join(site, "..", "..", "..", "bin", _BIN)
    yield os.path.join(site, "bin", _BIN)


def bin_path():
    """The absolute path of the ``acl-ipc-guard`` command installed with this package (never
    another copy found on ``PATH`` or in this interpreter's ``bin/``, which may be of
    another version)."""
    for path in _bin_candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    raise FileNotFoundError(f"the {_BIN} command installed with {_HERE} was not found")
