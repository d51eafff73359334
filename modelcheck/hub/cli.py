"""The ``modelcheck publish`` subcommand: its options, and the handler that runs ``publish.publish``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_publish_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``publish`` to the CLI's subcommands."""
    publish = commands.add_parser(
        "publish",
        help="push the files that passed a stage to the Hugging Face Hub, with a model card, verified, then tagged",
        description=(
            "Publish to the Hugging Face Hub exactly the files that passed every check of the stage in REPORT: the "
            "model's artifact files and the gate's publish.files (re-hashed against the report), README.md (a model "
            "card of the results), modelcheck/report.json and the baseline modelcheck/<id>.json + .npz, in one "
            "commit; then read back and tag. A release is the model files, gate file and stage (not the report): "
            "rerunning it, also after running the stage again, finishes it without a second commit. "
            "Flags win over the gate's publish: section. Exit status: 0 published "
            "(or already published), 1 refused (nothing sent, or the message says what), 2 usage, 4 the Hub kept "
            "failing (the message says what is and is not there; rerunning finishes)."
        ),
    )
    publish.add_argument("report", metavar="REPORT", help="the report of the stage's run (pytest --modelcheck-report)")
    publish.add_argument("--gate", required=True, metavar="GATE", help="the gate file the stage ran")
    publish.add_argument("--repo-id", metavar="ORG/NAME", help="the Hub model repo (default: publish.repo_id)")
    publish.add_argument(
        "--tag", help="tag the published commit, e.g. the release's tag; a valid git ref name (default: publish.tag)"
    )
    publish.add_argument("--branch", help="branch to commit to (default: publish.branch, else main)")
    publish.add_argument(
        "--create-pr",
        action="store_true",
        help="open a Hub pull request instead of committing; prints the command that tags it once merged",
    )
    publish.add_argument("--private", action="store_true", default=None, help="create the repo private if it is new")
    publish.add_argument(
        "--stage", default="deploy", help="the stage whose checks must all have passed (default: deploy)"
    )
    publish.add_argument("--dry-run", action="store_true", help="check everything and print the plan; write nothing")
    publish.set_defaults(handler=run_publish)
    return publish


def run_publish(args: argparse.Namespace) -> int:
    from modelcheck.hub.plan import Options
    from modelcheck.hub.publish import publish

    options = Options(
        repo_id=args.repo_id, tag=args.tag, branch=args.branch, create_pr=args.create_pr, private=args.private,
        stage=args.stage, dry_run=args.dry_run,
    )  # fmt: skip

    def out(text: str) -> None:
        print(text, flush=True)

    def err(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    return publish(Path(args.report), Path(args.gate), options, out=out, err=err)
