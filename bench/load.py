"""Run the load generators (wrk, hey) against 127.0.0.1 and read their results."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"
#: wrk counts a request that takes longer as a timeout error.
WRK_TIMEOUT = "5s"
#: Extra time a load generator gets beyond its run before it is considered hung.
GRACE_SECONDS = 120


class LoadError(RuntimeError):
    """A load generator failed or printed nothing we could read."""


@dataclass(frozen=True)
class LoadResult:
    """What one load-generator run measured; latencies in milliseconds."""

    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # failed connections, reads, writes, timeouts and answers other than 2xx/3xx
    output: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def median(results: list[LoadResult]) -> LoadResult:
    """The run with the median requests/s (the lower of the two middle ones), with the errors of all runs."""
    middle = sorted(results, key=lambda result: result.rps)[(len(results) - 1) // 2]
    return dataclasses.replace(middle, errors=sum(result.errors for result in results))


def combine(results: list[LoadResult]) -> LoadResult:
    """Several runs as one: requests and time added up, the median p50 and the worst p99."""
    p50s = sorted(result.p50_ms for result in results)
    return LoadResult(
        tool=results[0].tool,
        requests=sum(result.requests for result in results),
        seconds=sum(result.seconds for result in results),
        p50_ms=p50s[len(p50s) // 2],
        p99_ms=max(result.p99_ms for result in results),
        errors=sum(result.errors for result in results),
        output="\n".join(result.output for result in results),
    )


def has(tool: str) -> bool:
    return shutil.which(tool) is not None


def _run(command: list[str], timeout: float, cwd: Path | None = None) -> str:
    try:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"{command[0]} did not finish within {timeout:.0f} s: {' '.join(command)}") from exc
    if completed.returncode != 0:
        raise LoadError(f"{' '.join(command)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout + completed.stderr


def wrk_command(
    url: str, script: str, args: tuple[str, ...], *, seconds: int, connections: int, threads: int
) -> list[str]:
    """The wrk command line for a run of ``seconds`` with a script from bench/wrk/."""
    threads = min(threads, connections)
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(WRK_SCRIPTS / script),
        url,
        "--",
        *args,
    ]


def wrk(url: str, script: str, args: tuple[str, ...], *, seconds: int, connections: int, threads: int) -> LoadResult:
    """Run wrk with a script of bench/wrk/ (run from there, so that it finds common.lua)."""
    command = wrk_command(url, script, args, seconds=seconds, connections=connections, threads=threads)
    output = _run(command, seconds + GRACE_SECONDS, cwd=WRK_SCRIPTS)
    return parse_wrk(output)


def parse_wrk(output: str) -> LoadResult:
    """The result in the BENCH-RESULT line that bench/wrk/common.lua prints."""
    match = re.search(r"^BENCH-RESULT (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise LoadError(f"wrk printed no BENCH-RESULT line:\n{output}")
    data = json.loads(match[1])
    errors = sum(data[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        output=output,
    )


def hey(
    url: str, *, connections: int, seconds: int | None = None, requests: int | None = None, rate: float | None = None
) -> LoadResult:
    """Run hey for ``seconds`` or for exactly ``requests`` requests; ``rate`` caps the total requests/s."""
    command = ["hey", "-c", str(connections), "-t", "20"]
    command += ["-z", f"{seconds}s"] if seconds is not None else ["-n", str(requests)]
    if rate is not None:
        command += ["-q", f"{rate / connections:.3f}"]  # hey's -q is per connection (worker)
    output = _run([*command, url], (seconds or 60) + GRACE_SECONDS)
    return parse_hey(output)


def _hey_seconds(output: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([0-9.]+) secs", output)
    return float(match[1]) if match else float("nan")


def parse_hey(output: str) -> LoadResult:
    """The result in hey's summary: total time, latency distribution, status codes and errors."""
    summary, _, error_section = output.partition("Error distribution:")
    statuses = {int(code): int(count) for code, count in re.findall(r"^\s*\[(\d+)\]\s+(\d+) responses", summary, re.M)}
    failures = sum(int(count) for count in re.findall(r"^\s*\[(\d+)\]", error_section, re.M))
    answered = sum(statuses.values())
    return LoadResult(
        tool="hey",
        requests=answered,
        seconds=_hey_seconds(output, "Total:"),
        p50_ms=_hey_seconds(output, "50% in") * 1000,
        p99_ms=_hey_seconds(output, "99% in") * 1000,
        errors=failures + sum(count for code, count in statuses.items() if code >= 400),
        output=output,
    )


def version(tool: str) -> str:
    """The Debian package version of a load generator, or "not installed"."""
    listed = subprocess.run(["dpkg-query", "-W", "-f=${Version}", tool], capture_output=True, text=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        return listed.stdout
    return "installed" if has(tool) else "not installed"
