"""What ``modelcheck publish`` reads from the Hub before writing anything: the endpoint, the branch head,
the tag, a commit of this very publish that already landed, and whether the card's YAML validates."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from modelcheck.errors import PublishRefused
from modelcheck.hub import retry
from modelcheck.hub.plan import TRAILER, Plan


def environ_endpoint() -> str:
    """The Hub endpoint: ``HF_ENDPOINT`` (read now), else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def remote_state(api: Any, plan: Plan, log: Callable[[str], None]) -> None:
    """Fill in the plan from the Hub (reads only): head of the branch, the tag, a landed commit of this digest."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = retry.call(
            "read the repo's branches and tags",
            lambda: api.list_repo_refs(plan.repo_id, include_pull_requests=plan.create_pr),
            log=log,
        )
    except RepositoryNotFoundError:
        plan.repo_exists = False
        plan.notes.append(
            f"{plan.repo_id} does not exist yet: it is created ({'private' if plan.private else 'public'})"
        )
        return
    plan.repo_exists = True
    branches = {ref.name: ref.target_commit for ref in refs.branches}
    if plan.branch not in branches:
        raise PublishRefused(
            f"{plan.repo_id} has no branch {plan.branch!r} (branches: {', '.join(sorted(branches))}); "
            "create it on the Hub first or pass --branch with an existing one"
        )
    plan.parent_commit = branches[plan.branch]
    tags = {ref.name: ref.target_commit for ref in refs.tags}
    plan.tag_target = tags.get(plan.tag) if plan.tag else None
    plan.landed_commit = find_landed(api, plan, refs, log)
    if plan.tag_target is not None and plan.tag_target != plan.landed_commit:
        raise PublishRefused(
            f"tag {plan.tag!r} of {plan.repo_id} already points at commit {plan.tag_target}, which is not a publish of "
            "these files; a tag is never moved: publish under a new tag (--tag), or delete the old tag on the Hub first"
        )


def find_landed(api: Any, plan: Plan, refs: Any | None, log: Callable[[str], None]) -> str | None:
    """The commit on the branch (or a pull request's head with ``create_pr``) whose message carries the digest."""
    wanted = f"{TRAILER}: {plan.digest}"
    if plan.create_pr:
        if refs is None:
            refs = retry.call(
                "read the repo's pull requests",
                lambda: api.list_repo_refs(plan.repo_id, include_pull_requests=True),
                log=log,
            )
        heads = [ref.ref for ref in (refs.pull_requests or [])]
    else:
        heads = [plan.branch]
    for head in heads:
        commits: list[Any] = retry.call(f"read the commits of {head}", _commits_of(api, plan.repo_id, head), log=log)
        for commit in commits:
            if wanted in (commit.message or "") or wanted in (commit.title or ""):
                return str(commit.commit_id)
    return None


def _commits_of(api: Any, repo_id: str, head: str) -> Callable[[], list[Any]]:
    def read() -> list[Any]:
        return list(api.list_repo_commits(repo_id, revision=head))

    return read


def validate_card(api: Any, text: str, token: str | None, log: Callable[[str], None]) -> None:
    """POST the card to the Hub's ``/api/validate-yaml``; refused with the Hub's errors."""
    from huggingface_hub.utils import get_session

    url = f"{api.endpoint}/api/validate-yaml"
    headers = {"authorization": f"Bearer {token}"} if token else {}

    def post() -> Any:
        response = get_session().post(url, json={"content": text, "repoType": "model"}, headers=headers)
        if response.status_code == 429 or response.status_code >= 500:
            from huggingface_hub.utils import hf_raise_for_status

            hf_raise_for_status(response)
        return response

    response = retry.call("validate the card's YAML", post, log=log)
    if response.status_code == 400:
        try:
            body = response.json()
            errors = [e.get("message", str(e)) for e in body.get("errors", [])] or [str(body.get("error", body))]
        except ValueError:
            errors = [response.text[:300]]
        raise PublishRefused(
            f"the Hub rejects the model card's YAML metadata: {'; '.join(errors)}; fix publish.card in the gate file"
        )
    if response.status_code >= 400:
        raise PublishRefused(f"the Hub's YAML check answered HTTP {response.status_code}: {response.text[:200]}")
