"""No message or log shows any part of a DSN's userinfo (issue 10, defect 5), and the embedded store is
readable by its owner only (defect 11).

Each password holds one reserved character of RFC 3986 (``# / ? @ : %``): raw, it used to be printed as
a "port", as "unknown DSN parameters" or with the whole DSN unmasked. Messages are checked for the user
name and for every fragment of the password, through parse_dsn, configure(), the CLI and $LLMPULSE_DSN.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from llmpulse.agent.export.config import ConfigError, build_config
from llmpulse.agent.store.dsn import DSNError, open_error_message, parse_dsn

from llmpulse import agent
from tests.conftest import PYTHON

USER = "carol_the_admin"
RESERVED = "#/?@:%"
PASSWORDS = [f"Kx9{char}Zq4{char}Wv7" for char in RESERVED]


def _fragments(password: str) -> list[str]:
    """The password, its percent-encoded form, and each piece between its reserved characters."""
    pieces = [p for char in RESERVED for p in password.split(char) if len(p) >= 3]
    return [USER, password, quote(password, safe=""), *pieces]


def _assert_clean(text: str, password: str) -> None:
    leaked = [f for f in _fragments(password) if f in text]
    assert not leaked, f"{leaked} in {text!r}"


def _dsns(password: str) -> list[str]:
    """DSN shapes around a raw (not encoded) password, each of which must be refused or parsed cleanly."""
    return [
        f"http://{USER}:{password}@ch.internal:8123/prod",
        f"https://{USER}:{password}@ch.internal/prod",
        f"http://{USER}:{password}@ch.internal:port/prod",
        f"http://{USER}:{password}@ch.internal/prod?compress=1",
        f"http://{USER}:{password}@/prod",
        f"{USER}:{password}@ch.internal:8123/prod",  # no scheme
        f"postgres://{USER}:{password}@ch.internal/prod",
        f"chdb://{USER}:{password}@memory",
        f"  http://{USER}:{password}@ch.internal:8123/bad-name  ",
    ]


@pytest.mark.parametrize("password", PASSWORDS, ids=[f"char{c!r}" for c in RESERVED])
def test_parse_errors_never_show_the_userinfo(password: str) -> None:
    for dsn in _dsns(password):
        try:
            target = parse_dsn(dsn)
        except DSNError as exc:
            _assert_clean(str(exc), password)
        else:  # only a raw ':' in a password is valid (RFC 3986 allows it in userinfo)
            assert ":" in password and target.password == password, dsn
            _assert_clean(target.safe() + repr(target), password)


@pytest.mark.parametrize("password", [p for p in PASSWORDS if ":" not in p])
def test_raw_reserved_characters_are_refused_with_the_encoding_rule(password: str) -> None:
    with pytest.raises(DSNError, match="percent-encode") as info:
        parse_dsn(f"http://{USER}:{password}@ch.internal:8123/prod")
    _assert_clean(str(info.value), password)
    assert "http://***@ch.internal:8123/prod" in str(info.value)


@pytest.mark.parametrize("password", PASSWORDS)
def test_percent_encoded_passwords_parse_and_safe_shows_no_userinfo(password: str) -> None:
    target = parse_dsn(f"https://{quote(USER)}:{quote(password, safe='')}@ch.internal:9443/prod")
    assert (target.username, target.password, target.host, target.port) == (USER, password, "ch.internal", 9443)
    assert target.safe() == "https://***@ch.internal:9443/prod"
    _assert_clean(target.safe() + repr(target), password)
    # an engine error that quotes the credentials is scrubbed too
    message = open_error_message(target, RuntimeError(f"auth failed for {USER} with {password} / {quote(password)}"))
    _assert_clean(message, password)


@pytest.mark.parametrize("password", PASSWORDS)
def test_configure_and_environment_errors_never_show_the_userinfo(password: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for dsn in _dsns(password):
        try:
            build_config({}, dsn=dsn)
        except ConfigError as exc:
            _assert_clean(str(exc), password)
        try:
            build_config({"LLMPULSE_DSN": dsn})
        except ConfigError as exc:
            assert "$LLMPULSE_DSN" in str(exc)
            _assert_clean(str(exc), password)
    bad = f"http://{USER}:{password}@ch.internal:port/prod"
    with pytest.raises(ConfigError) as info:
        agent.configure(bad)
    _assert_clean(str(info.value), password)
    _assert_clean(caplog.text, password)


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "llmpulse.agent.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize("password", PASSWORDS)
def test_cli_errors_never_show_the_userinfo(password: str, tmp_path: Path, python_env) -> None:
    raw = f"http://{USER}:{password}@127.0.0.1:1/prod"
    encoded = f"http://{USER}:{quote(password, safe='')}@127.0.0.1:1/prod"  # valid; nothing listens on port 1
    for dsn in (raw, encoded):
        result = _cli(["schema", "apply", "--dsn", dsn], python_env, tmp_path)
        assert result.returncode != 0
        _assert_clean(result.stdout + result.stderr, password)
        from_env = _cli(["schema", "apply"], {**python_env, "LLMPULSE_DSN": dsn}, tmp_path)
        assert from_env.returncode != 0
        _assert_clean(from_env.stdout + from_env.stderr, password)
    assert "http://***@127.0.0.1:1/prod" in result.stderr


def test_chdb_paths_may_hold_at_signs(tmp_path: Path) -> None:
    assert parse_dsn(f"chdb://{tmp_path}/a@b/store").path == f"{tmp_path}/a@b/store"


# --- defect 11: the embedded store is 0700 ----------------------------------------------------------


def _open_store(path: Path, env: dict[str, str], *, write: bool = True) -> None:
    """Open the store in a child (chDB allows one path per process); write a prompt into it or read it."""
    code = f"from llmpulse.agent.store.dsn import parse_dsn\nc = parse_dsn('chdb://{path}').client()\n"
    if write:
        code += (
            "c.command('CREATE DATABASE IF NOT EXISTS d')\n"
            "c.command('CREATE TABLE IF NOT EXISTS d.t (s String) ENGINE = MergeTree ORDER BY s')\n"
            "c.command(\"INSERT INTO d.t VALUES ('a stored prompt')\")\n"
        )
    code += "assert c.query('SELECT count() FROM d.t').result_rows[0][0] == 1\n"
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr


def _open_to_others(root: Path) -> list[str]:
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            full = os.path.join(dirpath, name)
            mode = os.lstat(full).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{oct(stat.S_IMODE(mode))} {full}")
    return found


def test_embedded_store_directory_is_owner_only(tmp_path: Path, python_env) -> None:
    store = tmp_path / "new" / "store"
    _open_store(store, python_env)
    # Nothing below it is reachable by anyone else: parts the engine writes later get the process umask
    # (0644 here) but cannot be opened without search permission on this directory.
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "tmp").stat().st_mode) == 0o700  # created at engine start, under umask 077


def test_an_existing_world_readable_store_is_tightened(tmp_path: Path, python_env) -> None:
    store = tmp_path / "old" / "store"
    _open_store(store, python_env)
    for dirpath, dirs, files in os.walk(store):  # as an older version left it
        for name in (*dirs, *files):
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o755 if os.path.isdir(full) else 0o644)
    store.chmod(0o755)
    assert _open_to_others(store)
    _open_store(store, python_env, write=False)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert _open_to_others(store) == []
