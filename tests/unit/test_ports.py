"""The ports the tests give their servers: none the kernel may hand to another socket before the server binds it."""

from __future__ import annotations

import socket

import pytest

from tests import conftest
from tests.conftest import _ephemeral_ports_start, free_port


def test_a_port_for_a_test_server_is_one_the_kernel_gives_no_other_socket():
    """A port picked by binding port 0 could be given to any other ``bind`` on port 0 or ``connect`` before the
    server bound it, and the server would not start: the ports come from below the kernel's ephemeral range."""
    if conftest._ports is None:
        pytest.skip("this kernel's ephemeral range leaves too few ports below it")
    ports = [free_port() for _ in range(200)]
    assert max(ports) < _ephemeral_ports_start()
    assert len(set(ports)) == len(ports)  # nobody in this process is given a port twice in a row
    for port in ports[:20]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))  # still free
