"""A configuration error stops `syncgate serve | worker | migrate` with one line that names the
variable or the host, and exit status 2 (no traceback)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.service import free_port

from syncgate.cli import CONFIGURATION_ERROR


def run(command: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "syncgate", command],
        cwd=tmp_path,  # no .env of the checkout
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres//nowhere", "invalid setting SYNCGATE_DATABASE_URL: not a database URL"),
        (
            "mysql://syncgate:hunter2@db.example.com/syncgate",
            "invalid setting SYNCGATE_DATABASE_URL: unsupported database 'mysql'",
        ),
        ("sqlite:///{tmp}/missing/folder/syncgate.db", "cannot reach the database at SQLite file"),
        (
            "postgresql://syncgate:hunter2@127.0.0.1:{port}/syncgate",
            "cannot reach the database at 127.0.0.1:{port}/syncgate (SYNCGATE_DATABASE_URL)",
        ),
    ],
)
def test_a_bad_or_unreachable_database_is_one_line_and_exit_status_2(
    command: str, url: str, expected: str, tmp_path: Path
) -> None:
    port = str(free_port())  # nothing listens there
    result = run(command, tmp_path, SYNCGATE_DATABASE_URL=url.format(tmp=tmp_path, port=port))
    assert result.returncode == CONFIGURATION_ERROR == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syncgate: " + expected.format(port=port))
    assert "hunter2" not in result.stderr + result.stdout


def test_a_malformed_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    result = run("serve", tmp_path, SYNCGATE_LOG_LEVEL="loud")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("syncgate: invalid setting SYNCGATE_LOG_LEVEL")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("module", ["syncgate", "app"])
def test_python_dash_m_runs_the_cli_under_both_names(module: str, tmp_path: Path) -> None:
    # CONTRACT §2: `python -m app …` is the same as `syncgate …`.
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "worker" in result.stdout and "migrate" in result.stdout
