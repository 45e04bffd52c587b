# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`sinkprune push DIR REPO_ID`: upload a saved pruned checkpoint to the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse
import sys

NAME = "push"
HELP = "Upload a saved pruned checkpoint folder to the Hugging Face Hub (one commit; creates the repo if needed)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="checkpoint folder written by `sinkprune prune --output DIR`")
    parser.add_argument("repo_id", metavar="REPO_ID", help="Hub model id, namespace/name")
    parser.add_argument("--private", action="store_true", help="create the repo as private (if it does not exist)")
    parser.add_argument("--revision", default=None, help="branch to commit to (created if missing; default: main)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing directly")
    parser.add_argument("--commit-message", default=None, help="commit message")
    parser.add_argument(
        "--token",
        default=None,
        help="Hub token with write access (default: HF_TOKEN, then the token saved by `hf auth login`); "
        "prefer those over this flag, which shows up in shell history",
    )
    parser.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT, then https://huggingface.co)")
    parser.add_argument("--max-retries", type=int, default=3, help="retries after transient errors (default 3)")


def run(args: argparse.Namespace) -> int:
    from ..hub.push import HubPushError, push_to_hub

    try:
        url = push_to_hub(
            args.folder,
            args.repo_id,
            private=args.private,
            token=args.token,
            revision=args.revision,
            create_pr=args.create_pr,
            commit_message=args.commit_message,
            endpoint=args.endpoint,
            max_retries=args.max_retries,
        )
    except HubPushError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(url)
    return 0
