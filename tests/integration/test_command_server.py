"""The command server (`afasa-ops daemon`): a command handed to it runs in a process forked
from it, yet exactly as the caller's: its directory, environment, umask, streams, exit code,
secrets it must mask, and Ctrl-C. Each test has its own server (its own XDG_CACHE_HOME)."""

from __future__ import annotations

import json
import os
import pty
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from afasa_ops.daemon import client

EXE = Path(sys.executable).parent / "afasa-ops"


@dataclass
class Target:
    """A checkout-less target whose one shell step tells who ran it, and how."""

    home: Path
    env: dict[str, str]

    def ops(
        self, *args: str, umask: int = 0o022, files: int = 1024, **env: str
    ) -> subprocess.Popen[str]:
        def as_the_caller() -> None:
            os.umask(umask)
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, hard))

        return subprocess.Popen(
            [str(EXE), "--config", "afasa-ops.toml", *args],
            cwd=self.home,  # the relative --config resolves only from here
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=as_the_caller,
        )

    def run(self, *args: str, **kw: object) -> tuple[subprocess.Popen[str], str, str]:
        proc = self.ops(*args, **kw)  # type: ignore[arg-type]
        out, err = proc.communicate(timeout=120)
        return proc, out, err

    def daemon(self, *args: str) -> dict[str, object]:
        proc = subprocess.run(
            [str(EXE), "daemon", *args, "--json"], env=self.env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        doc: dict[str, object] = json.loads(proc.stdout)
        return doc

    def runbook(self, argv: list[str], **params: object) -> None:
        step = {"id": "who", "kind": "shell.check", "params": {"argv": argv, **params}}
        doc = {"name": "t", "phases": [{"id": "p", "steps": [step]}]}
        (self.home / "runbook.yaml").write_text(json.dumps(doc))


# The step's shell reports the command's pid, that process's parent, $MARK, its umask and its
# limit of open files.
WHO = [
    "sh",
    "-c",
    "echo $PPID $(cut -d' ' -f4 /proc/$PPID/stat) $MARK $(umask) $(ulimit -n) > ../who.txt",
]


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    assert EXE.exists(), f"{EXE}: the console script (pip install -e .)"
    (tmp_path / "repo").mkdir()
    (tmp_path / "afasa-ops.toml").write_text(
        '[repo]\npath = "repo"\n[runbook]\npath = "runbook.yaml"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AFASA_OPS_", "MARK"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    t = Target(tmp_path, env)
    t.runbook(WHO)
    yield t
    subprocess.run([str(EXE), "daemon", "stop"], env=env, capture_output=True)


def who(target: Target) -> tuple[int, int, str, str, int]:
    pid, parent, mark, umask, files = (target.home / "who.txt").read_text().split()
    return int(pid), int(parent), mark, umask, int(files)


def test_a_command_is_forked_from_the_server_and_takes_the_callers_place(
    target: Target,
) -> None:
    server = target.daemon("start", "--idle", "120")
    assert server["running"] is True and server["fresh"] is True

    proc, out, err = target.run("run", "--yes", umask=0o027, files=123, MARK="from-the-caller")
    assert proc.returncode == 0, err
    pid, parent, mark, umask, files = who(target)
    assert parent == server["pid"]  # forked from the server...
    assert pid != proc.pid  # ...not run by the program the caller started
    # ...in the caller's directory (the relative --config), environment, umask and limits.
    assert (mark, umask, files) == ("from-the-caller", "0027", 123)
    assert "result: ok" in out + err
    assert "Usage: afasa-ops" in target.run("--help")[1]  # named as when run directly

    # The control: the same command with the server turned off runs in the caller's process
    # (and AFASA_OPS_DAEMON is not taken for a config key).
    proc, _, err = target.run("run", "--yes", MARK="direct", AFASA_OPS_DAEMON="off")
    assert proc.returncode == 0, err
    pid, _, mark, _, _ = who(target)
    assert (pid, mark) == (proc.pid, "direct")


def test_on_a_terminal_the_command_has_the_terminal(target: Target) -> None:
    """Through the server, a command on a terminal draws for a terminal and asks its
    questions there (`--step`), and the answer reaches it."""
    server = target.daemon("start")
    who_step = {"id": "who", "kind": "shell.check", "params": {"argv": WHO}}
    write = {"id": "f", "kind": "file.content", "params": {"path": "out.txt", "content": "hi\n"}}
    doc = {"name": "t", "phases": [{"id": "p", "steps": [who_step, write]}]}
    (target.home / "runbook.yaml").write_text(json.dumps(doc))
    # An operator at a terminal: not CI (where afasa-ops never asks), colours on.
    env = {k: v for k, v in target.env.items() if k not in ("NO_COLOR", "CI")}
    env |= {"TERM": "xterm", "MARK": "tty"}

    pid, fd = pty.fork()
    if pid == 0:  # the caller, on the terminal
        os.chdir(target.home)
        os.execve(str(EXE), [str(EXE), "--config", "afasa-ops.toml", "run", "--step"], env)
    screen, answered = b"", 0
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # the terminal closed: the caller is gone
            break
        screen += data
        if screen.count(b"Apply p.f") > answered:
            answered += 1
            os.write(fd, b"y\n")
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert code == 0, screen.decode(errors="replace")
    assert answered >= 1  # the question was asked on the terminal, and answered
    assert (target.home / "repo" / "out.txt").read_text() == "hi\n"
    assert b"\x1b[" in screen  # drawn for a terminal (colours), as without a server
    assert who(target)[1] == server["pid"]


def test_exit_codes_and_errors_come_back_as_they_are(target: Target) -> None:
    target.daemon("start")
    target.runbook(["sh", "-c", "exit 3"])
    proc, out, err = target.run("run", "--yes", "--json")
    assert proc.returncode == 4  # a check that does not hold blocks the run
    assert json.loads(out)["status"] == "blocked"
    assert "exited 3, expected 0" in out

    proc, _, err = target.run("no-such-command")
    assert proc.returncode == 2
    assert "No such command 'no-such-command'" in err


def test_secrets_of_the_callers_environment_are_masked(target: Target) -> None:
    """The server learned its own environment; a command masks what its caller's holds."""
    target.daemon("start")
    target.runbook(["sh", "-c", "echo $BENCH_API_TOKEN"], expect_stdout_contains="nothing")
    secret = "caller-only-s3cr3t-value"
    proc, out, err = target.run("run", "--yes", "--json", BENCH_API_TOKEN=secret)
    assert proc.returncode == 4
    assert secret not in out + err
    assert "***" in out  # the step's output was there, masked
    reports = list((target.home / "repo" / ".afasa-ops").rglob("*"))
    assert reports and all(secret not in p.read_text() for p in reports if p.is_file())


def test_ctrl_c_reaches_the_command(target: Target) -> None:
    server = target.daemon("start")
    target.runbook(["sleep", "60"])
    proc = target.ops("run", "--yes")
    command = _wait_for_child_of(int(server["pid"]))  # type: ignore[arg-type]
    _wait_for_child_of(command)  # the step's `sleep`: the command is running its steps
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "interrupted" in err
    assert not _alive(command)
    assert target.daemon("status")["commands_running"] == 0


def test_stop_and_status(target: Target) -> None:
    assert target.daemon("status")["running"] is False
    started = target.daemon("start")
    again = target.daemon("start")
    assert again["pid"] == started["pid"]  # one server per user and installation
    stopped = target.daemon("stop")
    assert stopped["running"] is False
    assert not _alive(int(started["pid"]))  # type: ignore[arg-type]
    assert not Path(str(started["socket"])).exists()
    proc, _, err = target.run("run", "--yes", MARK="after-stop")
    assert proc.returncode == 0, err
    assert who(target)[0] == proc.pid  # without a server, commands run in their own process


def test_a_stopping_server_lets_new_commands_go_while_its_own_finish(target: Target) -> None:
    """Told to stop while a command runs, the server lets that command finish, and takes
    its socket away at once: new commands run in their callers' processes meanwhile."""
    server = target.daemon("start")
    target.runbook(["sleep", "60"])
    running = target.ops("run", "--yes")
    command = _wait_for_child_of(int(server["pid"]))  # type: ignore[arg-type]
    _wait_for_child_of(command)  # its step's `sleep`
    stopping = subprocess.Popen(
        [str(EXE), "daemon", "stop"], env=target.env, stdout=subprocess.PIPE, text=True
    )
    socket_file = Path(str(server["socket"]))
    for _ in range(600):
        if not socket_file.exists():
            break
        time.sleep(0.05)
    assert not socket_file.exists()
    assert _alive(command) and _alive(int(server["pid"]))  # type: ignore[arg-type]
    status = target.daemon("status")
    assert status["running"] is False

    running.send_signal(signal.SIGINT)
    running.communicate(timeout=60)
    assert running.returncode == 1  # interrupted, and its exit code still came back
    stopping.communicate(timeout=60)
    assert stopping.returncode == 0
    assert not _alive(int(server["pid"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("problem", ["too long", "not a folder"])
def test_a_cache_folder_the_server_cannot_use_is_one_line(tmp_path: Path, problem: str) -> None:
    cache = tmp_path / ("c" * 100 if problem == "too long" else "file")
    if problem == "not a folder":
        cache.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFASA_OPS_")}
    proc = subprocess.run(
        [str(EXE), "daemon", "start"],
        env={**env, "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == (2 if problem == "too long" else 1)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "set XDG_CACHE_HOME" in proc.stderr


def test_a_socket_in_a_folder_others_can_enter_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's environment holds secrets: it goes only to a socket of this user in a
    folder of this user that no one else can enter."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = client.socket_path()
    Path(path).parent.mkdir()
    os.chmod(Path(path).parent, 0o755)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        listener.setblocking(False)
        assert client.run_through_server(["--version"]) is None
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
        os.chmod(Path(path).parent, 0o700)
        assert client.trusted_socket(path)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "phase1"], "run"),
        (["--config", "x.toml", "worker", "report"], "worker"),
        (["-c", "serve", "serve"], "serve"),
        (["-v", "daemon", "start"], "daemon"),
        (["--version"], None),
    ],
)
def test_the_command_is_found_past_the_root_options(argv: list[str], command: str) -> None:
    assert client.command_of(argv) == command


def test_long_running_and_server_commands_never_go_through_it(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.daemon("start")
    monkeypatch.setenv("XDG_CACHE_HOME", target.env["XDG_CACHE_HOME"])
    assert client.run_through_server(["status", "--help"]) == 0  # through the server
    for argv in (["worker", "report", "--help"], ["-v", "serve", "--help"], ["daemon", "stop"]):
        assert client.run_through_server(argv) is None, argv  # run by the caller


def _wait_for_child_of(parent: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent:
                    return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"no command forked from {parent}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
