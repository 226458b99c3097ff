"""Start one command in a sandbox: the launcher that batch grading runs for each submission.

    python -I -S instructor/sandbox.py CONFIG_JSON

Linux only, and the namespaces need root (CAP_SYS_ADMIN). The launcher reads the settings
from its single argument and then, in this order:

1. unshares the mount, network, PID, IPC and UTS namespaces. The command then has no
   network interface but a loopback that is down, and only its own processes and mounts;
2. covers a folder that others may not enter and that contains a path of ``expose`` (the
   Python installation) with an empty tmpfs, and binds those paths back into it;
3. makes the root file system read-only and mounts empty tmpfs file systems over ``/tmp``,
   ``/var/tmp`` and ``/dev/shm``. Then it binds the work folder back to its own path, and
   also the repository and the exposed paths if they lie inside those folders;
4. mounts an empty tmpfs over the repository and binds back only the entries listed in
   ``visible`` (the grading suite, ``mnist_course``, the data, the virtual environment), so
   ``solutions/``, ``tests/``, ``.git`` and everything else in the repository are hidden;
5. forks: the child becomes process 1 of the new PID namespace, so every process it starts
   is killed when it ends. It mounts a fresh ``/proc``, sets the resource limits, changes to
   the work folder, drops to ``uid``/``gid`` (root could unmount the tmpfs again), asks the
   kernel to kill it when the launcher dies, and executes the command. With ``uid`` null
   the command keeps root and must drop it itself, as ``instructor/graded_run.py`` does.

The launcher's exit status is the command's, or 128 + the signal number that ended it.
When ``unshare`` fails (not root, or inside a container without CAP_SYS_ADMIN) and
``allow_fallback`` is true, it prints a warning and runs the command with the resource
limits only, in a new session but without any of the hiding above.

``--check`` as the only argument tests whether the namespaces can be created here and exits
with status 0 if they can.

The file uses the standard library only and runs with ``-I -S``, before anything of the
repository is imported.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

NAMESPACES = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
WARNING_PREFIX = "sandbox warning: "

libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(OSError):
    """A system call of the sandbox setup failed."""


def checked(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise SandboxError(error, f"{what} failed: {os.strerror(error)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data=None):
    checked(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def bind_from_descriptor(descriptor: int, target: str) -> None:
    """Bind the file or folder that ``descriptor`` refers to onto ``target``."""
    mount(f"/proc/self/fd/{descriptor}", target, None, MS_BIND | MS_REC)


SHARED_FOLDERS = (("/tmp", "1g"), ("/var/tmp", "64m"), ("/dev/shm", "256m"))
"""World-writable folders that the command gets empty and private, with their sizes."""


def is_inside(path: str, folder: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), folder]) == folder


def hide_shared_folders(workdir: str, keep: list[str]) -> None:
    """Make / read-only and give the command empty private /tmp, /var/tmp and /dev/shm.

    The folders of ``keep`` that lie inside those (a repository cloned into /tmp) are bound
    back to their own paths, read-only like the rest of the root file system.
    """
    kept = [
        (path, os.open(path, os.O_PATH | os.O_DIRECTORY))
        for path in keep
        if os.path.isdir(path)
        and any(is_inside(path, folder) for folder, _ in SHARED_FOLDERS)
    ]
    workdir_descriptor = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
    # A read-only root catches any world-writable folder not covered by the tmpfs below.
    # Some container file systems reject the remount; the tmpfs mounts still apply then.
    try:
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    except SandboxError as error:
        print(f"{WARNING_PREFIX}{error}; / stays writable", file=sys.stderr)
    for folder, size in SHARED_FOLDERS:
        if os.path.isdir(folder):
            mount(
                "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777"
            )
    for path, descriptor in kept:
        os.makedirs(path, exist_ok=True)
        bind_from_descriptor(descriptor, path)
        os.close(descriptor)
    os.makedirs(workdir, exist_ok=True)
    bind_from_descriptor(workdir_descriptor, workdir)
    os.close(workdir_descriptor)
    # A bind mount copies the flags of its source, read-only included.
    mount(None, workdir, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)


def blocking_ancestor(path: str) -> str | None:
    """Return the first folder above ``path`` that others may not enter, if there is one."""
    current = "/"
    for part in os.path.abspath(path).split("/")[1:]:
        current = os.path.join(current, part)
        if current == path:
            return None
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


def expose(paths: list[str]) -> None:
    """Make each of ``paths`` reachable for the sandbox user, hiding what surrounds it.

    The usual case is a Python installed in root's home (pyenv in /root, mode 700). An
    empty tmpfs goes over the first folder that others may not enter, and each path is
    bound back into it. So the interpreter finds its standard library, and nothing else of
    that folder is visible.
    """
    by_ancestor: dict[str, list[tuple[str, int]]] = {}
    for path in paths:
        ancestor = blocking_ancestor(path)
        if ancestor is not None and os.path.isdir(path):
            by_ancestor.setdefault(ancestor, []).append(
                (path, os.open(path, os.O_PATH | os.O_DIRECTORY))
            )
    for ancestor, entries in by_ancestor.items():
        mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for path, descriptor in entries:
            os.makedirs(path, mode=0o755, exist_ok=True)
            bind_from_descriptor(descriptor, path)
            os.close(descriptor)


def hide_repository(repository: str, visible: list[str]) -> None:
    """Replace the repository by an empty tmpfs with only the ``visible`` entries bound back."""
    descriptors = {}
    for name in visible:
        path = os.path.join(repository, name)
        if os.path.exists(path):
            descriptors[name] = os.open(path, os.O_PATH)
    mount("tmpfs", repository, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for name, descriptor in descriptors.items():
        target = os.path.join(repository, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(f"/proc/self/fd/{descriptor}"):
            os.makedirs(target, exist_ok=True)
        else:
            with open(target, "w"):
                pass
        bind_from_descriptor(descriptor, target)
        os.close(descriptor)


def set_limits(config: dict) -> None:
    """Set the address space, file size, core and process limits of the current process."""
    memory = config.get("memory_bytes")
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    file_size = config.get("file_size_bytes")
    if file_size:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    processes = config.get("max_processes")
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def enter_child(config: dict, namespaced: bool) -> None:
    """Mount /proc, set the limits, change to the work folder and drop to the sandbox user."""
    if namespaced:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    set_limits(config)
    os.chdir(config["workdir"])
    if os.getuid() == 0 and config.get("uid") is not None:
        drop_privileges(config["uid"], config["gid"])
    # Set after the uid change, because a change of credentials clears it.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def execute(config: dict, namespaced: bool) -> None:
    """Turn the current process into the command; never returns."""
    enter_child(config, namespaced)
    command = config["command"]
    os.execve(command[0], command, config["env"])


def prepare_file_system(config: dict) -> None:
    """Set up the file system view of ``config`` inside the new mount namespace."""
    exposed = config.get("expose", [])
    expose(exposed)
    hide_shared_folders(config["workdir"], [config["repository"], *exposed])
    hide_repository(config["repository"], config["visible"])


def enter_sandbox(config: dict) -> None:
    """Enter new namespaces and set up the file system view of ``config``."""
    enter_namespaces()
    prepare_file_system(config)


def wait_for(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


def enter_namespaces() -> None:
    checked(libc.unshare(NAMESPACES), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def check_namespaces() -> int:
    """Return 0 if the namespaces and mounts work here, else print why and return 1."""
    pid = os.fork()
    if pid == 0:
        try:
            enter_namespaces()
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
        except OSError as error:
            print(error, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    return wait_for(pid)


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        return check_namespaces()
    config = json.loads(sys.argv[1])
    try:
        enter_namespaces()
    except SandboxError as error:
        if not config.get("allow_fallback"):
            print(f"sandbox error: {error}", file=sys.stderr)
            return 125
        print(
            f"{WARNING_PREFIX}{error}; running without namespaces, file hiding or "
            "privilege drop",
            file=sys.stderr,
            flush=True,
        )
        execute(config, namespaced=False)
    prepare_file_system(config)
    pid = os.fork()
    if pid == 0:
        try:
            execute(config, namespaced=True)
        except BaseException as error:  # Report any setup failure, then end the child.
            print(f"sandbox error: {error}", file=sys.stderr, flush=True)
            os._exit(125)
    return wait_for(pid)


if __name__ == "__main__":
    sys.exit(main())
