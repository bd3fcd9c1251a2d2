"""A CPU-time limit for the fuzzers (an input that takes longer is a hang, whatever the machine's load): the
playground server's own limit, so the tests and the server bound work the same way."""

from indexdiff.playground import Timeout, cpu_limit

__all__ = ["Timeout", "cpu_limit"]
