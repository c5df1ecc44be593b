"""``wb conformance``: vectors against a verifier, black-box runs against a hub or a node."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent


@click.command("vectors")
@click.option(
    "--verifier",
    envvar="WB_CONFORMANCE_VERIFIER",
    default="",
    metavar="CMD",
    help='External verifier command template, e.g. "mytool verify --json {trust_args} '
    '{limits_args} {path}". '
    "Default: this implementation's verifier. See conformance_tests/README.md.",
)
@click.option(
    "-k", "keyword", default="", help="Only run cases matching this pytest -k expression."
)
@click.option("--junit", "junit", type=click.Path(dir_okay=False), default=None,
              help="Also write a JUnit XML report to this file.")
def conformance_vectors(verifier: str, keyword: str, junit: str | None) -> None:
    """Check every vector in conformance_tests/vectors/ (valid and invalid bundles).

    One line per case (its id names the vector and, for invalid ones, the expected
    error code); exit status non-zero when any case fails."""
    import pytest

    if verifier:
        os.environ["WB_CONFORMANCE_VERIFIER"] = verifier
    args = [str(HERE / "test_vectors.py"), "-v", "-p", "no:cacheprovider", "--tb=line",
            "-o", "console_output_style=classic"]
    if keyword:
        args += ["-k", keyword]
    if junit:
        args += [f"--junitxml={junit}"]
    sys.exit(int(pytest.main(args)))


@click.command("fuzz")
@click.option("--verifier", required=True, metavar="CMD",
              help='Verifier command template, e.g. "mytool verify --json {trust_args} '
              '{limits_args} {path}" (conformance_tests/README.md), or "reference" for this '
              'implementation.')
@click.option("--against", default="reference", show_default=True, metavar="CMD",
              help="The second verifier (same template); default: this implementation, "
              "in-process.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Random seed: the same seed replays the same cases.")
@click.option("--seconds", default=60.0, show_default=True, type=float,
              help="Stop after this many seconds.")
@click.option("--max-cases", default=None, type=int, help="Stop after this many cases.")
@click.option("--out", type=click.Path(file_okay=False), default="fuzz-disagreements",
              show_default=True, help="Directory for the reproducer of each disagreement.")
def conformance_fuzz(verifier: str, against: str, seed: int, seconds: float,
                     max_cases: int | None, out: str) -> None:
    """Differential fuzzing: both verifiers judge the same mutated bundles.

    Mutates the valid vectors (byte flips, header edits, reordering, Unicode edge cases,
    truncation, added and dropped files; re-signed with the vectors' seeds so mutations
    reach the record checks) and gives each case to both commands in different
    containers. Prints every disagreement, shrunk to the fewest mutations, with a
    reproducer directory under --out; exit status 1 when there was any."""
    from conformance_tests.fuzz import fuzz

    report = fuzz(verifier, against, seed=seed, seconds=seconds, max_cases=max_cases,
                  out=Path(out), progress=click.echo)
    click.echo(report.summary())
    sys.exit(1 if report.disagreements else 0)


def _finish(report, junit: str | None) -> None:  # noqa: ANN001
    click.echo(report.summary())
    if junit:
        report.write_junit(junit)
    sys.exit(report.exit_code)


@click.command("hub")
@click.argument("url", required=False)
@click.option("--token", envvar="WB_CONFORMANCE_TOKEN", default=None,
              help="Peer token the hub's operator registered for the suite.")
@click.option("--subscriber-token", default=None,
              help="A second peer's token: reads and subscriptions are made as that peer.")
@click.option("--admin-token", envvar="WB_CONFORMANCE_ADMIN_TOKEN", default=None,
              help="WhiteBalloon hub admin token, used only to approve the run's fresh key.")
@click.option("--approve-cmd", default=None, metavar="CMD",
              help="Command that trusts a parked key on the hub; {key_id}, {origin}, "
                   "{pending_id} and {peer} are replaced, e.g. "
                   "\"wb hub keys approve {key_id}\".")
@click.option("--key-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Sign with this key (a `wb keys generate` file, mode 0600) that the hub "
                   "already trusts for the peer, instead of a fresh one: nothing to approve.")
@click.option("--v1", "v1", is_flag=True,
              help="The original hub API profile (/api/v1/sync/<peer>/bundle|status), "
                   "as the original client speaks it.")
@click.option("--peer", default=None, help="With --v1: the peer name the token belongs to.")
@click.option("--other-peer", default=None, metavar="NAME",
              help="With --v1: a second real peer, to check that tokens do not cross.")
@click.option("--other-token", default=None, help="With --other-peer: that peer's token.")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Run only this check (a name or glob, e.g. 'invalid.*'; repeatable) and "
                   "the checks it needs; the others are reported skipped.")
@click.option("-k", "keywords", multiple=True, metavar="TEXT",
              help="Run only checks whose name contains TEXT (repeatable).")
@click.option("--list", "list_checks", is_flag=True,
              help="Print the checks of the profile with what each needs and writes; "
                   "contact nothing.")
@click.option("--timeout", default=15.0, show_default=True, help="Seconds per wait.")
@click.option("--junit", type=click.Path(dir_okay=False), default=None,
              help="Also write a JUnit XML report to this file.")
def conformance_hub(url: str | None, token: str | None, subscriber_token: str | None,
                    admin_token: str | None, approve_cmd: str | None, key_file: str | None,
                    v1: bool, peer: str | None, other_peer: str | None,
                    other_token: str | None, only: tuple[str, ...], keywords: tuple[str, ...],
                    list_checks: bool, timeout: float, junit: str | None) -> None:
    """Black-box checks of a live hub at URL (see docs/conformance.md).

    Every check is reported passed, failed or skipped (with the reason); exit status 1
    when any failed or none passed, 2 on a usage error (before any check runs)."""
    from conformance_tests.hub_runner import HubTarget, checks, listing, run_hub, select
    from conformance_tests.report import Report

    profile = "hub-v1" if v1 else "hub"
    if list_checks:
        click.echo(listing(profile))
        return
    if not url:
        raise click.UsageError("give the hub's URL")
    if not token:
        raise click.UsageError("give --token (or WB_CONFORMANCE_TOKEN): the peer token the "
                               "hub's operator registered for the suite")
    if v1 and not peer:
        raise click.UsageError("--v1 needs --peer NAME (the peer the token belongs to)")
    if not v1 and (peer or other_peer or other_token):
        raise click.UsageError("--peer, --other-peer and --other-token belong to --v1")
    if bool(other_peer) != bool(other_token):
        raise click.UsageError("--other-peer and --other-token go together")
    if other_peer is not None and other_peer == peer:
        raise click.UsageError("--other-peer must be another peer than --peer")
    try:
        select(checks(profile), only, keywords)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    seed = None
    if key_file:
        from keys import KeyFileError, load_signing_key

        try:
            seed = load_signing_key(key_file).seed
        except KeyFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--key-file") from None
    report = Report(profile, out=sys.stdout)
    target = HubTarget(url, token, subscriber_token=subscriber_token, admin_token=admin_token,
                       approve_cmd=approve_cmd, peer=peer, timeout=timeout, key_seed=seed,
                       other_peer=other_peer, other_token=other_token)
    asyncio.run(run_hub(target, report, v1=v1, only=only, keywords=keywords))
    _finish(report, junit)


@click.command("node")
@click.argument("url")
@click.option("--token", envvar="WB_CONFORMANCE_TOKEN", required=True,
              help="The inbox token of a hub peer registered on the node.")
@click.option("--approve-cmd", default=None, metavar="CMD",
              help='Command that approves a pending bundle, e.g. '
                   '"wb sync pending approve {digest}".')
@click.option("--timeout", default=15.0, show_default=True, help="Seconds per wait.")
@click.option("--junit", type=click.Path(dir_okay=False), default=None,
              help="Also write a JUnit XML report to this file.")
def conformance_node(url: str, token: str, approve_cmd: str | None, timeout: float,
                     junit: str | None) -> None:
    """Black-box checks of a live node's inbox and public endpoints at URL."""
    from conformance_tests.node_runner import NodeTarget, run_node
    from conformance_tests.report import Report

    report = Report("node", out=sys.stdout)
    asyncio.run(run_node(NodeTarget(url, token, approve_cmd=approve_cmd, timeout=timeout),
                         report))
    _finish(report, junit)


@click.command("tlog")
@click.argument("url")
@click.option("--timeout", default=15.0, show_default=True, help="Seconds per request.")
@click.option("--junit", "junit", type=click.Path(dir_okay=False), default=None,
              help="Also write a JUnit XML report to this file.")
def conformance_tlog(url: str, timeout: float, junit: str | None) -> None:
    """Read-only checks of the transparency log of the hub at URL: note key, signed
    checkpoint, tiles, inclusion and consistency proofs (docs/transparency.md)."""
    from conformance_tests.report import Report
    from conformance_tests.tlog_runner import run_tlog

    report = Report("tlog", out=sys.stdout)
    asyncio.run(run_tlog(url, report, request_timeout=timeout))
    _finish(report, junit)


def register(root: click.Group) -> None:
    group = root.commands.get("conformance")
    if not isinstance(group, click.Group):
        group = click.Group("conformance", help="Conformance checks for any node, hub or bundle.")
        root.add_command(group)
    group.add_command(conformance_vectors)
    group.add_command(conformance_fuzz)
    group.add_command(conformance_hub)
    group.add_command(conformance_node)
    group.add_command(conformance_tlog)
