"""Letta (0.16.8) through its REST API: seeding and fingerprint.

No LLM keys are needed: agents carry an inline llm_config (never called, since
the rehearsal sends no chat) and an embedding_config pointing at an
OpenAI-compatible embeddings endpoint (the rehearsal's stub), which Letta
calls itself to embed archival passages, file chunks and search queries.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from migrator.apps import AppError
from migrator.apps.http import HttpApp
from migrator.apps.registry import App, DbLogin

SEED_TAG = "rehearsal"
SEARCH_SENTINEL = "The launch window for rocket Zephyr opens on March 3 at the Alcantara spaceport."
SEARCH_QUERY = "Zephyr launch window spaceport"
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIM = 1536
PASSAGE_BATCH = 100

TOOLS = {
    "lookup_order": '''def lookup_order(order_id: str) -> str:
    """Look up the status of a customer order.

    Args:
        order_id: The order identifier, e.g. "A-1001".

    Returns:
        str: The order's status.
    """
    return "order " + order_id + " has shipped"
''',
    "convert_currency": '''def convert_currency(amount: float, rate: float) -> float:
    """Convert an amount with a fixed exchange rate.

    Args:
        amount: The amount in the source currency.
        rate: Units of the target currency per source unit.

    Returns:
        float: The converted amount.
    """
    return round(amount * rate, 2)
''',
    "schedule_meeting": '''def schedule_meeting(topic: str, day: str) -> str:
    """Put a meeting on the team calendar.

    Args:
        topic: What the meeting is about.
        day: The weekday of the meeting.

    Returns:
        str: A confirmation line.
    """
    return "meeting about " + topic + " on " + day
''',
}

SHARED_BLOCKS = {
    "company": "Acme Rocketry builds small launch vehicles. Headquarters: Lisbon. Support hours 08:00-18:00 UTC.",
    "policies": "Never promise a launch date before the range safety review. Refunds within 30 days.",
}

_WORDS = ("orbit payload telemetry booster fairing propellant countdown range apogee stage engine "
          "gimbal manifest customer satellite cubesat deorbit ignition nozzle valve turbopump").split()


def passage_text(agent_index: int, passage_index: int) -> str:
    if agent_index == 0 and passage_index == 0:
        return SEARCH_SENTINEL
    words = [_WORDS[(agent_index * 7 + passage_index * 3 + k) % len(_WORDS)] for k in range(8)]
    return f"Note {passage_index} for agent {agent_index}: " + " ".join(words) + "."


def handbook_text(scale: int) -> str:
    lines = ["# Acme Rocketry field handbook", ""]
    for i in range(12 * scale):
        lines.append(f"Section {i}: the {_WORDS[i % len(_WORDS)]} checklist has {i % 9 + 3} steps; "
                     f"sign off with the {_WORDS[(i + 5) % len(_WORDS)]} lead before the countdown.")
    lines.append("Employees get 30 days of vacation; the office is in Lisbon.")
    return "\n".join(lines) + "\n"


class LettaClient(HttpApp):
    app = "letta"

    def wait_ready(self, seconds: float = 180) -> float:
        return self.wait_until("/v1/health/", seconds)

    def health(self) -> dict:
        return self.json("GET", "/v1/health/")

    def list_all(self, path: str, page: int = 100, **params: Any) -> list[dict]:
        """Every item of a cursor-paginated list (limit/after)."""
        items: list[dict] = []
        after = None
        while True:
            query = {**params, "limit": page}
            if after:
                query["after"] = after
            batch = self.json("GET", path, params=query)
            if isinstance(batch, dict):  # some lists come wrapped
                batch = batch.get("items") or batch.get("data") or []
            new = [b for b in batch if b.get("id") not in {i.get("id") for i in items}]
            items.extend(new)
            if len(batch) < page or not new:
                return items
            after = batch[-1]["id"]


def _embedding_config(endpoint: str) -> dict:
    return {"embedding_endpoint_type": "openai", "embedding_endpoint": endpoint,
            "embedding_model": EMBEDDING_MODEL, "embedding_dim": EMBEDDING_DIM, "embedding_chunk_size": 300}


def _llm_config(endpoint: str) -> dict:
    # Never called: the rehearsal sends no chat. The endpoint answers 400 to chat.
    return {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": endpoint,
            "context_window": 32000}


def seed(client: LettaClient, scale: int, embedding_endpoint: str, log=print) -> dict:
    """Create blocks, tools, agents (memory blocks, tools, tags), archival passages
    (embedded by the endpoint), a source with an uploaded file attached to agents.
    Skips everything if agents tagged 'rehearsal' already exist. Returns counts."""
    client.wait_ready()
    existing = client.list_all("/v1/agents/", tags=[SEED_TAG])
    if existing:
        log(f"letta: already seeded ({len(existing)} agents tagged '{SEED_TAG}'); nothing created")
        return {"skipped": True, "agents": len(existing)}
    emb, llm = _embedding_config(embedding_endpoint), _llm_config(embedding_endpoint)
    counts = {"blocks": 0, "tools": 0, "agents": 0, "passages": 0, "sources": 0, "files": 0}

    block_ids = []
    for label, value in SHARED_BLOCKS.items():
        block = client.json("POST", "/v1/blocks/", json={"label": label, "value": value, "limit": 5000,
                                                          "description": f"shared {label} facts"})
        block_ids.append(block["id"])
        counts["blocks"] += 1
    tool_ids = []
    for name, source in TOOLS.items():
        tool = client.json("POST", "/v1/tools/", json={"source_code": source, "tags": [SEED_TAG]})
        if tool.get("name") != name:
            raise AppError("letta", f"tool created as {tool.get('name')!r}, expected {name!r}")
        tool_ids.append(tool["id"])
        counts["tools"] += 1

    agents = []
    n_agents, n_passages = 2 * scale, 5 * scale
    for i in range(n_agents):
        agent = client.json("POST", "/v1/agents/", json={
            "name": f"rehearsal-agent-{i:03d}",
            "description": f"Rehearsal agent {i}",
            "memory_blocks": [
                {"label": "human", "value": f"The user is customer #{1000 + i}, prefers short answers."},
                {"label": "persona", "value": f"I am support agent {i} of Acme Rocketry."},
            ],
            "block_ids": block_ids, "tool_ids": tool_ids,
            "tags": [SEED_TAG, f"team-{i % 2}"],
            "llm_config": llm, "embedding_config": emb,
        })
        agents.append(agent)
        counts["agents"] += 1
        # The first passage through the agent (its archive comes into being), the
        # rest in batches into that archive: same rows, far fewer calls at scale.
        first = client.json("POST", f"/v1/agents/{agent['id']}/archival-memory", json={"text": passage_text(i, 0)})
        counts["passages"] += 1
        archive_id = first[0]["archive_id"] if isinstance(first, list) else first["archive_id"]
        for start in range(1, n_passages, PASSAGE_BATCH):
            batch = [{"text": passage_text(i, j)} for j in range(start, min(n_passages, start + PASSAGE_BATCH))]
            client.json("POST", f"/v1/archives/{archive_id}/passages/batch", json={"passages": batch})
            counts["passages"] += len(batch)
    # A core-memory edit, as a user's conversation would leave behind.
    client.json("PATCH", f"/v1/agents/{agents[0]['id']}/core-memory/blocks/human",
                json={"value": "The user is customer #1000, prefers short answers. Timezone: UTC+1."})

    source = client.json("POST", "/v1/sources/", json={"name": "rehearsal-handbook",
                                                        "description": "Field handbook", "embedding_config": emb})
    counts["sources"] += 1
    upload = client.request("POST", f"/v1/sources/{source['id']}/upload",
                            files={"file": ("handbook.txt", handbook_text(scale).encode(), "text/plain")})
    counts["files"] += 1
    file_id = upload.json().get("id")
    _wait_file(client, source["id"], file_id)
    for agent in agents[:2]:
        client.request("PATCH", f"/v1/agents/{agent['id']}/sources/attach/{source['id']}")
    log(f"letta: created {counts['agents']} agents, {counts['blocks']} shared blocks, {counts['tools']} tools, "
        f"{counts['passages']} archival passages, {counts['sources']} source with {counts['files']} file")
    return counts


def _wait_file(client: LettaClient, source_id: str, file_id: str | None, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    status = "?"
    while time.monotonic() < deadline:
        files = client.json("GET", f"/v1/sources/{source_id}/files")
        match = [f for f in files if f.get("id") == file_id] or files
        status = match[0].get("processing_status") if match else "missing"
        if status == "completed":
            return
        if status == "error":
            raise AppError("letta", f"file upload failed: {match[0].get('error_message')}")
        time.sleep(1)
    raise AppError("letta", f"uploaded file not processed after {seconds:.0f} s (status {status})")


def fingerprint(client: LettaClient) -> dict:
    """What Letta lists through its API; no timestamps, nothing that changes by
    itself. Reads only (a search embeds the query but stores nothing)."""
    client.wait_ready()
    agents: dict[str, Any] = {}
    listed = client.list_all("/v1/agents/")
    for item in sorted(listed, key=lambda a: a["id"]):
        agent = client.json("GET", f"/v1/agents/{item['id']}")
        aid = agent["id"]
        agents[aid] = {
            "name": agent.get("name"),
            "tags": sorted(agent.get("tags") or []),
            "blocks": {b["label"]: b.get("value") for b in sorted(agent.get("blocks") or
                                                                   agent.get("memory", {}).get("blocks", []),
                                                                   key=lambda b: b["label"])},
            "tools": sorted(t["name"] for t in agent.get("tools") or []),
            "sources": sorted(s["name"] for s in agent.get("sources") or []),
            "passages": len(client.list_all(f"/v1/agents/{aid}/archival-memory")),
            "messages": len(client.json("GET", f"/v1/agents/{aid}/messages", params={"limit": 1000})),
            "embedding_dim": (agent.get("embedding_config") or {}).get("embedding_dim"),
        }
    blocks = {b["id"]: {"label": b.get("label"), "value": b.get("value")}
              for b in client.list_all("/v1/blocks/")}
    tools = sorted(t["name"] for t in client.list_all("/v1/tools/"))
    sources = {}
    for s in sorted(client.list_all("/v1/sources/"), key=lambda s: s["id"]):
        files = client.json("GET", f"/v1/sources/{s['id']}/files")
        sources[s["id"]] = {
            "name": s.get("name"),
            "files": {f.get("original_file_name") or f.get("file_name"): f.get("processing_status")
                      for f in files},
            "passages": len(client.list_all(f"/v1/sources/{s['id']}/passages")),
        }
    search: dict[str, Any] = {"query": SEARCH_QUERY, "agent": None, "results": []}
    seeded = [a for a in agents.values() if a["name"] == "rehearsal-agent-000"]
    if seeded:
        aid = next(k for k, v in agents.items() if v is seeded[0])
        found = client.json("GET", f"/v1/agents/{aid}/archival-memory/search",
                            params={"query": SEARCH_QUERY, "top_k": 3})
        results = found.get("results", found) if isinstance(found, dict) else found
        search = {"query": SEARCH_QUERY, "agent": aid, "results": [r.get("content") for r in results]}
    return {"version": client.health().get("version"), "agents": agents, "blocks": blocks, "tools": tools,
            "sources": sources, "search": search}


def summary(fp: dict) -> dict[str, Any]:
    agents = fp.get("agents", {})
    return {
        "agents": len(agents),
        "blocks": len(fp.get("blocks", {})),
        "tools": len(fp.get("tools", [])),
        "archival passages": sum(a["passages"] for a in agents.values()),
        "messages": sum(a["messages"] for a in agents.values()),
        "sources / files": f"{len(fp.get('sources', {}))} / "
                           f"{sum(len(s['files']) for s in fp.get('sources', {}).values())}",
        "source passages": sum(s["passages"] for s in fp.get("sources", {}).values()),
        "search top hit": (fp.get("search", {}).get("results") or ["(none)"])[0],
    }


# --- what the steps need to know about Letta (migrator/apps/registry.py) -----------

def env_updates(current: dict[str, str], login: DbLogin) -> tuple[dict[str, str], tuple[str, ...]]:
    """LETTA_PG_URI, or the LETTA_PG_HOST/PORT/DB/USER/PASSWORD keys where the file uses those;
    the role's search_path finds letta_agents, letta_embeddings and extensions."""
    if "LETTA_PG_URI" in current or not any(k.startswith("LETTA_PG_") for k in current):
        uri = (f"postgresql://{quote(login.user, safe='')}:{quote(login.password, safe='')}"
               f"@{login.host}:{login.port}/{login.dbname}")
        return {"LETTA_PG_URI": uri}, ()
    return ({"LETTA_PG_HOST": login.host, "LETTA_PG_PORT": login.port, "LETTA_PG_DB": login.dbname,
             "LETTA_PG_USER": login.user, "LETTA_PG_PASSWORD": login.password}, ())


def database_of(env: dict[str, str]) -> str:
    uri = env.get("LETTA_PG_URI")
    if uri:
        parts = urlsplit(uri)
        return f"{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"
    return f"{env.get('LETTA_PG_USER', '?')}@{env.get('LETTA_PG_HOST', '?')}/{env.get('LETTA_PG_DB', '?')}"


def login_of(env: dict[str, str]) -> DbLogin:
    """The database Letta connects to: LETTA_PG_URI, else the LETTA_PG_* keys (its schema
    comes from the role's or database's search_path, so it is left empty here)."""
    uri = env.get("LETTA_PG_URI")
    if uri:
        parts = urlsplit(uri)
        return DbLogin(host=parts.hostname or "", port=str(parts.port or 5432), dbname=parts.path.lstrip("/"),
                       user=unquote(parts.username or ""), password=unquote(parts.password or ""))
    return DbLogin(host=env.get("LETTA_PG_HOST", ""), port=env.get("LETTA_PG_PORT") or "5432",
                   dbname=env.get("LETTA_PG_DB", ""), user=env.get("LETTA_PG_USER", ""),
                   password=env.get("LETTA_PG_PASSWORD", ""))


APP = App(
    name="letta", db_key_prefixes=("LETTA_PG_",), env_updates=env_updates, database_of=database_of,
    login_of=login_of,
    seed=lambda app, scale, log: seed(LettaClient(app.url), scale,
                                      app.options.get("embedding_endpoint", "http://embeddings:8000/v1"), log=log),
    fingerprint=lambda app: fingerprint(LettaClient(app.url)), summary=summary)
