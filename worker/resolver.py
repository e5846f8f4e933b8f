"""Turning names in a job into Capsule ids, cached in Redis.

Upstream systems rarely know Capsule ids, so a job may name its party,
milestone (inside its pipeline), owner, team and custom field definitions.
Directories that are small and shared (users, teams with their members,
pipelines with their milestones, field definitions) are cached whole; a
party is cached per name. Every cache entry has a TTL. A name that matches
nothing in a cached directory triggers one refresh before it is refused, so
a user added a minute ago is found.

Keys, under prefix ``p``: ``p:cache:{directory}`` (JSON, TTL) and
``p:cache:party:{digest}`` (party id, TTL).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from worker.capsule import CapsuleClient
from worker.errors import JobInvalid, LookupFailed
from worker.job import Job

#: Page size for directory listings (Capsule's maximum).
PAGE_SIZE = 100
#: How long a process keeps its own copy of a cached lookup, in seconds.
LOCAL_TTL_S = 30.0
#: Pages read at most for one listing or search.
MAX_PAGES = 50


@dataclass(frozen=True)
class Resolved:
    """A job's references as Capsule ids."""

    party_id: int
    milestone_id: int
    owner_id: int | None
    team_id: int | None
    fields: list[tuple[int, Any]] = field(default_factory=list)
    from_cache: bool = False


class NameResolver:
    """Resolves job references; see the module docstring for the cache."""

    def __init__(
        self, client: redis.Redis, capsule: CapsuleClient, prefix: str, ttl_s: int
    ):
        self._redis = client
        self._capsule = capsule
        self._prefix = prefix
        self._ttl_s = ttl_s
        # A short-lived copy in this process spares a Redis round trip and a
        # JSON parse per lookup; Redis stays the cache the fleet shares.
        self._local: dict[str, tuple[float, Any]] = {}
        self._local_ttl_s = min(LOCAL_TTL_S, ttl_s)

    def resolve(self, job: Job) -> Resolved:
        """Return every reference of ``job`` as an id.

        Raises:
            LookupFailed: a name matched no record or several.
            JobInvalid: the owner is not a member of the team.
            TransientError: Capsule could not be asked.
        """
        owner_id, team_id = self.resolve_people(job)
        return Resolved(
            party_id=job.party_id or self.party_id(_required(job.party).name),
            milestone_id=job.milestone_id or self._milestone_id(job),
            owner_id=owner_id,
            team_id=team_id,
            fields=[
                (self._definition_id(f.definition_id, f.definition), f.value)
                for f in job.fields or []
            ],
        )

    def resolve_people(self, job: Job) -> tuple[int | None, int | None]:
        """Return the owner and team ids the job asks for, checking the pair."""
        owner_id = job.owner_id
        if job.owner is not None:
            owner_id = self._user_id(job.owner.username, job.owner.name)
        team_id = job.team_id or (self._team_id(job.team.name) if job.team else None)
        if owner_id is not None and team_id is not None:
            self.check_membership(owner_id, team_id)
        return owner_id, team_id

    def forget(self) -> None:
        """Drop every cached directory and party, e.g. after Capsule said an
        id is unknown."""
        self._local.clear()
        for key in self._redis.scan_iter(f"{self._prefix}:cache:*", count=500):
            self._redis.delete(key)

    def marker_definition_id(self, configured: str) -> int:
        """Return the id of the job-key marker field (given by id or name)."""
        if configured.isdigit():
            return int(configured)
        return self._definition_id(None, configured)

    # -- parties ---------------------------------------------------------

    def party_id(self, name: str) -> int:
        """Return the id of the one party named exactly ``name``."""
        cache_key = f"{self._prefix}:cache:party:{_digest(name)}"
        cached = self._recall(cache_key)
        if cached is not None:
            return int(cached)
        matches = [
            p["id"] for p in self._search_parties(name) if _party_name(p) == name
        ]
        party_id = _only_one(matches, "party", "party", name)
        self._store(cache_key, party_id)
        return party_id

    def _search_parties(self, name: str) -> list[dict[str, Any]]:
        return self._pages("parties/search", "parties", {"q": name})

    # -- directories -----------------------------------------------------

    def _user_id(self, username: str | None, name: str | None) -> int:
        if username is not None:
            return self._find(
                "users",
                "owner",
                "user",
                lambda u: u.get("username") == username,
                username,
            )
        return self._find(
            "users", "owner", "user", lambda u: u.get("name") == name, str(name)
        )

    def _team_id(self, name: str) -> int:
        return self._find(
            "teams", "team", "team", lambda t: t.get("name") == name, name
        )

    def _milestone_id(self, job: Job) -> int:
        ref = _required(job.milestone)
        pipeline_id = self._find(
            "pipelines",
            "milestone.pipeline",
            "pipeline",
            lambda p: p.get("name") == ref.pipeline,
            ref.pipeline,
        )
        return self._find(
            f"milestones:{pipeline_id}",
            "milestone.name",
            f"milestone of pipeline {ref.pipeline!r}",
            lambda m: m.get("name") == ref.name,
            ref.name,
        )

    def _definition_id(self, definition_id: int | None, name: str | None) -> int:
        if definition_id is not None:
            return definition_id
        return self._find(
            "definitions",
            "fields.definition",
            "custom field",
            lambda d: d.get("name") == name,
            str(name),
        )

    def check_membership(self, owner_id: int, team_id: int) -> None:
        """Refuse an owner who is not a member of the team.

        Raises:
            JobInvalid: naming the owner field.
            LookupFailed: no team has ``team_id``.
        """
        if self.is_member(owner_id, team_id):
            return
        team_name = self._team(team_id, refresh=False)["name"]
        raise JobInvalid(
            [
                (
                    "owner",
                    f"user {owner_id} is not a member of team {team_name!r}; "
                    "Capsule requires the owner to belong to the team",
                )
            ]
        )

    def is_member(self, owner_id: int, team_id: int) -> bool:
        """Return whether the user belongs to the team (cache refreshed once)."""
        for refresh in (False, True):
            team = self._team(team_id, refresh)
            if owner_id in {m["user"]["id"] for m in team.get("memberships", [])}:
                return True
        return False

    def _team(self, team_id: int, refresh: bool) -> dict[str, Any]:
        for fresh in (refresh, True):
            for team in self._directory("teams", refresh=fresh):
                if team["id"] == team_id:
                    return team
        raise LookupFailed(f"teamId: no team has id {team_id}", field="teamId")

    def _find(
        self,
        directory: str,
        job_field: str,
        what: str,
        match: Callable[[dict[str, Any]], bool],
        name: str,
    ) -> int:
        ids = [item["id"] for item in self._directory(directory) if match(item)]
        if not ids:
            ids = [
                item["id"]
                for item in self._directory(directory, refresh=True)
                if match(item)
            ]
        return _only_one(ids, job_field, what, name)

    def _directory(self, name: str, refresh: bool = False) -> list[dict[str, Any]]:
        cache_key = f"{self._prefix}:cache:{name}"
        cached = None if refresh else self._recall(cache_key)
        if cached is not None:
            items: list[dict[str, Any]] = cached
            return items
        items = self._fetch(name)
        self._store(cache_key, items)
        return items

    def _recall(self, cache_key: str) -> Any:
        """Return a cached value: this process's copy, else the shared one,
        else None."""
        held = self._local.get(cache_key)
        if held is not None and held[0] > time.monotonic():
            return held[1]
        shared = self._redis.get(cache_key)
        if shared is None:
            return None
        value = json.loads(str(shared))
        self._local[cache_key] = (time.monotonic() + self._local_ttl_s, value)
        return value

    def _store(self, cache_key: str, value: Any) -> None:
        self._redis.set(cache_key, json.dumps(value), ex=self._ttl_s)
        self._local[cache_key] = (time.monotonic() + self._local_ttl_s, value)

    def _fetch(self, name: str) -> list[dict[str, Any]]:
        if name == "users":
            return self._pages("users", "users")
        if name == "teams":
            return self._pages("teams", "teams", {"embed": "memberships"})
        if name == "pipelines":
            return self._pages("pipelines", "pipelines")
        if name == "definitions":
            return self._pages("opportunities/fields/definitions", "definitions")
        pipeline_id = name.removeprefix("milestones:")
        return self._pages(f"pipelines/{pipeline_id}/milestones", "milestones")

    def _pages(
        self, path: str, envelope: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self._capsule.get(
                path, {**(params or {}), "page": page, "perPage": PAGE_SIZE}
            )
            batch = body.get(envelope, []) if isinstance(body, dict) else []
            items.extend(_slim(item) for item in batch)
            if len(batch) < PAGE_SIZE:
                break
        return items


def _slim(item: dict[str, Any]) -> dict[str, Any]:
    """Keep only what lookups need, so cached directories stay small."""
    keep = ("id", "name", "username", "firstName", "lastName", "memberships")
    slim = {k: item[k] for k in keep if k in item}
    if "memberships" in slim:
        slim["memberships"] = [
            {"user": {"id": m["user"]["id"]}}
            for m in slim["memberships"]
            if m.get("user")
        ]
    return slim


def _party_name(party: dict[str, Any]) -> str:
    if party.get("name"):
        return str(party["name"])
    return " ".join(p for p in (party.get("firstName"), party.get("lastName")) if p)


def _only_one(ids: list[int], job_field: str, what: str, name: str) -> int:
    unique = sorted(set(ids))
    if len(unique) == 1:
        return unique[0]
    if not unique:
        raise LookupFailed(
            f"{job_field}: no {what} named {name!r} in Capsule", field=job_field
        )
    raise LookupFailed(
        f"{job_field}: {len(unique)} {what} records named {name!r} in Capsule "
        f"(ids {', '.join(map(str, unique[:5]))}); give the id instead",
        field=job_field,
    )


def _required(ref: Any) -> Any:
    if ref is None:  # the schema guarantees an id or a name
        raise LookupFailed("reference missing", field="(job)")
    return ref


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]
