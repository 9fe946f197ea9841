"""Fixtures for the receiver tests: real receiver processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from receiver_kit import SECRET, TOKEN

from pipeline.receiver.process import ReceiverProcess


@pytest.fixture(scope="module")
def hmac_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """One HMAC-only receiver shared by a module's tests (each checks its own effect)."""
    root = tmp_path_factory.mktemp("hmac-receiver")
    with ReceiverProcess(
        root / "landing",
        secrets=[SECRET],
        log_path=root / "receiver.log",
        args=["--body-timeout", "2"],
    ) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def bearer_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """A receiver requiring both the HMAC signature and the bearer token."""
    root = tmp_path_factory.mktemp("bearer-receiver")
    with ReceiverProcess(
        root / "landing", secrets=[SECRET], tokens=[TOKEN], log_path=root / "receiver.log"
    ) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def token_only_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """A receiver configured with bearer tokens alone (no signature secret)."""
    root = tmp_path_factory.mktemp("token-only-receiver")
    with ReceiverProcess(root / "landing", tokens=[TOKEN], log_path=root / "receiver.log") as r:
        yield r


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"
