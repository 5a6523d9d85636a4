"""n8n (2.8.4) through its own interfaces: the REST API the editor uses
(owner setup, login, API keys, credential listing) and the public API with an
API key (workflows, activation, credentials, executions), plus its webhooks.

The owner's login and the API key that `seed` creates are kept in a git-ignored
env file (``[apps.n8n] admin_file``, mode 0600) and never printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from migrator.apps import AppError
from migrator.apps.http import HttpApp
from migrator.apps.registry import App, DbLogin
from migrator.redact import register_secret

SEED_PREFIX = "rehearsal: "
PROBE_PATH = "rehearsal-probe"      # answers the fingerprint; saves no executions
INTAKE_PATH = "rehearsal-intake"    # the seed calls it to leave executions behind
PROBE_QUERY = {"name": "fingerprint"}
OWNER_EMAIL = "owner@rehearsal.example.com"
AUTH_COOKIE = "n8n-auth"
# Keys of the admin file; all but the e-mail are secrets. The session cookie is
# kept so that repeated fingerprints do not log in each time (n8n rate-limits
# /rest/login to a few attempts a minute).
SECRET_KEYS = ("N8N_OWNER_PASSWORD", "N8N_API_KEY", "N8N_AUTH_COOKIE")


# --- the admin file -------------------------------------------------------------

def read_admin(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip()
    for key in SECRET_KEYS:
        register_secret(values.get(key))
    return values


def write_admin(path: Path, values: dict[str, str]) -> None:
    for key in SECRET_KEYS:
        register_secret(values.get(key))
    text = ("# n8n owner login and public-API key created by `consolidate seed`.\n"
            "# Secrets: git-ignored, mode 0600. Delete this file only together with n8n's database.\n"
            + "".join(f"{k}={v}\n" for k, v in values.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    try:
        os.replace(tmp, path)
    except OSError:  # the file itself is a bind mount (cannot be replaced): write in place
        tmp.unlink()
        with path.open("w", encoding="utf-8") as out:
            out.write(text)


def new_password() -> str:
    # n8n wants 8-64 characters with a digit and an upper-case letter.
    return "Rh9" + secrets.token_urlsafe(18) + "x"


# --- the client -------------------------------------------------------------------

class N8nClient(HttpApp):
    app = "n8n"

    def __init__(self, base_url: str, timeout: float = 60.0):
        super().__init__(base_url, timeout)
        self.api_key: str | None = None

    def wait_ready(self, seconds: float = 180) -> float:
        return self.wait_until("/healthz/readiness", seconds)

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """The editor's REST API (/rest/...): answers are wrapped in {"data": ...}."""
        body = self.json(method, "/rest" + path, **kwargs)
        return body.get("data", body) if isinstance(body, dict) else body

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """The public API (/api/v1/...), authenticated with the API key."""
        if not self.api_key:
            raise AppError("n8n", "no API key (run `consolidate seed` first)")
        headers = {**kwargs.pop("headers", {}), "X-N8N-API-KEY": self.api_key}
        return self.json(method, "/api/v1" + path, headers=headers, **kwargs)

    def api_list(self, path: str, **params: Any) -> list[dict]:
        items: list[dict] = []
        cursor = None
        while True:
            query = {**params, "limit": 250}
            if cursor:
                query["cursor"] = cursor
            page = self.api("GET", path, params=query)
            items.extend(page.get("data", []))
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    def needs_owner_setup(self) -> bool:
        settings = self.rest("GET", "/settings")
        return bool(settings.get("userManagement", {}).get("showSetupOnFirstLoad"))

    def setup_owner(self, email: str, password: str) -> None:
        self.rest("POST", "/owner/setup", json={"email": email, "firstName": "Rehearsal", "lastName": "Owner",
                                                "password": password})

    def login(self, email: str, password: str, wait: float = 120) -> str:
        """Log in (waiting out n8n's login rate limit); returns the session cookie."""
        deadline = time.monotonic() + wait
        while True:
            response = self.request("POST", "/rest/login", expect=(),
                                    json={"emailOrLdapLoginId": email, "password": password})
            if response.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(min(15.0, float(response.headers.get("Retry-After") or 10)))
        if response.status_code != 200:
            raise AppError("n8n", f"POST /rest/login: HTTP {response.status_code}")
        cookie = self.session.cookies.get(AUTH_COOKIE)
        if not cookie:
            raise AppError("n8n", "POST /rest/login set no session cookie")
        register_secret(cookie)
        return cookie

    def use_cookie(self, cookie: str | None) -> bool:
        """Reuse a saved session; True if n8n still accepts it."""
        if not cookie:
            return False
        register_secret(cookie)
        self.session.cookies.set(AUTH_COOKIE, cookie)
        if self.request("GET", "/rest/login", expect=()).status_code == 200:
            return True
        self.session.cookies.clear()
        return False

    def create_api_key(self, label: str) -> str:
        scopes = self.rest("GET", "/api-keys/scopes")
        created = self.rest("POST", "/api-keys", json={"label": label, "scopes": scopes, "expiresAt": None})
        key = created.get("rawApiKey")
        if not key:
            raise AppError("n8n", "POST /rest/api-keys returned no rawApiKey")
        register_secret(key)
        return key

    def api_key_works(self) -> bool:
        if not self.api_key:
            return False
        response = self.request("GET", "/api/v1/workflows", params={"limit": 1},
                                headers={"X-N8N-API-KEY": self.api_key}, expect=())
        return response.status_code == 200

    def webhook(self, path: str, params: dict | None = None) -> tuple[int, Any]:
        response = self.request("GET", f"/webhook/{path}", params=params, expect=())
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body


def connect(url: str, admin_file: Path, *, create: bool = False, log=print) -> N8nClient:
    """A client logged in as the owner and holding an API key. With create=True
    (the seed), sets up the owner and the key when they do not exist yet."""
    client = N8nClient(url)
    client.wait_ready()
    admin = read_admin(admin_file)
    if client.needs_owner_setup():
        if not create:
            raise AppError("n8n", "no owner account yet (run `consolidate seed` first)")
        admin = {"N8N_OWNER_EMAIL": OWNER_EMAIL, "N8N_OWNER_PASSWORD": new_password()}
        write_admin(admin_file, admin)  # before the call: a lost password would lock us out
        client.setup_owner(admin["N8N_OWNER_EMAIL"], admin["N8N_OWNER_PASSWORD"])
        log(f"n8n: owner account set up (login kept in {admin_file})")
    elif not admin.get("N8N_OWNER_PASSWORD"):
        raise AppError("n8n", f"n8n already has an owner but {admin_file} holds no login for it")
    if not client.use_cookie(admin.get("N8N_AUTH_COOKIE")):
        admin["N8N_AUTH_COOKIE"] = client.login(admin["N8N_OWNER_EMAIL"], admin["N8N_OWNER_PASSWORD"])
        write_admin(admin_file, admin)
    client.api_key = admin.get("N8N_API_KEY")
    if not client.api_key_works():
        if not create:
            raise AppError("n8n", f"the API key in {admin_file} is missing or refused")
        client.api_key = client.create_api_key("consolidation rehearsal")
        admin["N8N_API_KEY"] = client.api_key
        write_admin(admin_file, admin)
        log(f"n8n: API key created (kept in {admin_file})")
    return client


# --- seeding ---------------------------------------------------------------------------

def _node(name: str, type_: str, version: float, position: list[int], parameters: dict, **extra: Any) -> dict:
    return {"id": str(uuid.uuid4()), "name": name, "type": type_, "typeVersion": version,
            "position": position, "parameters": parameters, **extra}


def _set_node(name: str, fields: dict[str, str], position: list[int]) -> dict:
    assignments = [{"id": str(uuid.uuid4()), "name": k, "value": v, "type": "string"} for k, v in fields.items()]
    return _node(name, "n8n-nodes-base.set", 3.4, position,
                 {"mode": "manual", "assignments": {"assignments": assignments}, "options": {}})


def _chain(*names: str) -> dict:
    return {a: {"main": [[{"node": b, "type": "main", "index": 0}]]} for a, b in zip(names, names[1:])}


def webhook_workflow(name: str, path: str, fields: dict[str, str], save_executions: bool) -> dict:
    hook = _node("Webhook", "n8n-nodes-base.webhook", 2, [0, 0],
                 {"httpMethod": "GET", "path": path, "responseMode": "lastNode", "options": {}},
                 webhookId=str(uuid.uuid4()))
    answer = _set_node("Answer", fields, [240, 0])
    save = "all" if save_executions else "none"
    return {"name": name, "nodes": [hook, answer], "connections": _chain("Webhook", "Answer"),
            "settings": {"executionOrder": "v1", "saveDataSuccessExecution": save,
                         "saveDataErrorExecution": save, "saveManualExecutions": save_executions}}


def report_workflow(index: int, credential: dict) -> dict:
    trigger = _node("Every night", "n8n-nodes-base.scheduleTrigger", 1.2, [0, 0],
                    {"rule": {"interval": [{"field": "days", "triggerAtHour": 2}]}})
    fetch = _node("Fetch metrics", "n8n-nodes-base.httpRequest", 4.2, [240, 0],
                  {"url": f"http://metrics.invalid/report/{index}", "authentication": "genericCredentialType",
                   "genericAuthType": "httpHeaderAuth", "options": {}},
                  credentials={"httpHeaderAuth": {"id": credential["id"], "name": credential["name"]}})
    shape = _set_node("Shape", {"report": f"nightly-{index}"}, [480, 0])
    return {"name": f"{SEED_PREFIX}nightly report {index:03d}", "nodes": [trigger, fetch, shape],
            "connections": _chain("Every night", "Fetch metrics", "Shape"), "settings": {"executionOrder": "v1"}}


def manual_workflow(index: int) -> dict:
    trigger = _node("Start", "n8n-nodes-base.manualTrigger", 1, [0, 0], {})
    code = _node("Compute", "n8n-nodes-base.code", 2, [240, 0],
                 {"jsCode": f"return [{{ json: {{ batch: {index}, total: {index} * 2 }} }}];"})
    return {"name": f"{SEED_PREFIX}manual cleanup {index:03d}", "nodes": [trigger, code],
            "connections": _chain("Start", "Compute"), "settings": {"executionOrder": "v1"}}


def seed(url: str, admin_file: Path, scale: int, log=print) -> dict:
    """Owner, API key, a credential, workflows (two active webhooks, the rest
    inactive) and executions (calls of the intake webhook). Skips the data if
    workflows named 'rehearsal: ...' already exist."""
    client = connect(url, admin_file, create=True, log=log)
    existing = [w for w in client.api_list("/workflows") if w.get("name", "").startswith(SEED_PREFIX)]
    if existing:
        log(f"n8n: already seeded ({len(existing)} workflows named '{SEED_PREFIX}...'); nothing created")
        return {"skipped": True, "workflows": len(existing)}
    counts = {"credentials": 0, "workflows": 0, "active": 0, "executions": 0}
    credentials = []
    for i in range(max(1, scale)):
        cred = client.api("POST", "/credentials", json={
            "name": f"{SEED_PREFIX}metrics header {i:03d}", "type": "httpHeaderAuth",
            "data": {"name": "X-Api-Key", "value": secrets.token_hex(16)}})
        credentials.append(cred)
        counts["credentials"] += 1

    probe = webhook_workflow(f"{SEED_PREFIX}probe webhook", PROBE_PATH,
                             {"service": "n8n", "answer": "ready", "echo": "={{ $json.query.name }}"},
                             save_executions=False)
    intake = webhook_workflow(f"{SEED_PREFIX}order intake", INTAKE_PATH,
                              {"accepted": "yes", "order": "={{ $json.query.order }}"}, save_executions=True)
    for wf in (probe, intake):
        created = client.api("POST", "/workflows", json=wf)
        client.api("POST", f"/workflows/{created['id']}/activate")
        counts["workflows"] += 1
        counts["active"] += 1
    tags = {name: client.api("POST", "/tags", json={"name": name})["id"] for name in ("rehearsal", "nightly")}
    for i in range(2 * scale):
        report = client.api("POST", "/workflows", json=report_workflow(i, credentials[i % len(credentials)]))
        client.api("PUT", f"/workflows/{report['id']}/tags", json=[{"id": tags["rehearsal"]}, {"id": tags["nightly"]}])
        manual = client.api("POST", "/workflows", json=manual_workflow(i))
        client.api("PUT", f"/workflows/{manual['id']}/tags", json=[{"id": tags["rehearsal"]}])
        counts["workflows"] += 2

    status, body = _wait_webhook(client, INTAKE_PATH, {"order": "warmup"})
    calls = 3 * scale
    for i in range(calls):
        status, body = client.webhook(INTAKE_PATH, {"order": f"A-{1000 + i}"})
        if status != 200:
            raise AppError("n8n", f"intake webhook answered HTTP {status}")
    counts["executions"] = calls + 1
    _wait_executions(client, counts["executions"])
    log(f"n8n: created {counts['workflows']} workflows ({counts['active']} active), "
        f"{counts['credentials']} credentials, {counts['executions']} executions")
    return counts


def _wait_webhook(client: N8nClient, path: str, params: dict, seconds: float = 60) -> tuple[int, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status, body = client.webhook(path, params)
        if status == 200 or time.monotonic() > deadline:
            return status, body
        time.sleep(1)


def _wait_executions(client: N8nClient, at_least: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        done = [e for e in client.api_list("/executions") if e.get("finished") or e.get("status") == "success"]
        if len(done) >= at_least:
            return
        if time.monotonic() > deadline:
            raise AppError("n8n", f"only {len(done)} of {at_least} executions recorded after {seconds:.0f} s")
        time.sleep(1)


# --- fingerprint ------------------------------------------------------------------------

def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(url: str, admin_file: Path) -> dict:
    """What n8n lists: workflows (id, name, active, versionId, activeVersionId,
    tags, node names, definition digest), credentials (name, type, digest of the
    decrypted data), execution counts per workflow and status, users (the login
    works: the owner's session makes these calls),
    and the probe webhook's answer (its workflow stores no executions, so asking
    it changes nothing that is counted)."""
    client = connect(url, admin_file)
    workflows = {}
    for wf in sorted(client.api_list("/workflows"), key=lambda w: w["id"]):
        workflows[wf["id"]] = {
            "name": wf.get("name"), "active": wf.get("active"), "versionId": wf.get("versionId"),
            "activeVersionId": wf.get("activeVersionId"),
            "tags": sorted(tag.get("name") for tag in wf.get("tags") or []),
            "nodes": sorted(n["name"] for n in wf.get("nodes") or []),
            "definition": _digest({"nodes": wf.get("nodes"), "connections": wf.get("connections")}),
        }
    credentials = {}
    for c in sorted(client.api_list("/credentials"), key=lambda c: c["id"]):
        # Reading it back decrypts it with N8N_ENCRYPTION_KEY: a digest of what n8n
        # shows (secret fields come back blanked by n8n itself) proves the key and
        # the data still match, without putting any value in the report.
        data = client.rest("GET", f"/credentials/{c['id']}", params={"includeData": "true"}).get("data") or {}
        credentials[c["id"]] = {"name": c.get("name"), "type": c.get("type"),
                                "data_keys": sorted(data), "data_digest": _digest(data)}
    executions: dict[str, dict[str, int]] = {}
    for e in client.api_list("/executions"):
        per = executions.setdefault(str(e.get("workflowId")), {})
        status = e.get("status") or ("success" if e.get("finished") else "unknown")
        per[status] = per.get(status, 0) + 1
    listed = client.rest("GET", "/users")
    users = sorted(u.get("email") for u in (listed.get("items", []) if isinstance(listed, dict) else listed))
    status, body = client.webhook(PROBE_PATH, PROBE_QUERY)
    return {"workflows": workflows, "credentials": credentials,
            "executions": dict(sorted(executions.items())), "users": users,
            "webhook": {"path": PROBE_PATH, "query": PROBE_QUERY, "status": status, "body": body}}


def summary(fp: dict) -> dict[str, Any]:
    wfs = fp.get("workflows", {})
    return {
        "workflows (active)": f"{len(wfs)} ({sum(1 for w in wfs.values() if w['active'])})",
        "credentials": len(fp.get("credentials", {})),
        "executions": sum(sum(v.values()) for v in fp.get("executions", {}).values()),
        "users": len(fp.get("users", [])),
        "webhook answer": f"HTTP {fp.get('webhook', {}).get('status')} "
                          f"{json.dumps(fp.get('webhook', {}).get('body'), sort_keys=True)}",
    }


# --- what the steps need to know about n8n (migrator/apps/registry.py) -------------

def admin_file(app) -> Path:
    """Where the n8n owner login and API key live: [apps.n8n] admin_file, else
    n8n-admin.env beside the app's env file."""
    return app.path("admin_file") or app.env_file.parent / "n8n-admin.env"


def env_updates(current: dict[str, str], login: DbLogin) -> tuple[dict[str, str], tuple[str, ...]]:
    return ({"DB_TYPE": "postgresdb", "DB_POSTGRESDB_HOST": login.host, "DB_POSTGRESDB_PORT": login.port,
             "DB_POSTGRESDB_DATABASE": login.dbname, "DB_POSTGRESDB_USER": login.user,
             "DB_POSTGRESDB_PASSWORD": login.password, "DB_POSTGRESDB_SCHEMA": login.schema}, ())


def database_of(env: dict[str, str]) -> str:
    return (f"{env.get('DB_POSTGRESDB_USER', '?')}@{env.get('DB_POSTGRESDB_HOST', '?')}:"
            f"{env.get('DB_POSTGRESDB_PORT', '5432')}/{env.get('DB_POSTGRESDB_DATABASE', '?')}"
            f" schema {env.get('DB_POSTGRESDB_SCHEMA') or 'public'}")


def login_of(env: dict[str, str]) -> DbLogin:
    """The database n8n connects to with these values (n8n's own defaults where a key is missing)."""
    return DbLogin(host=env.get("DB_POSTGRESDB_HOST") or "localhost", port=env.get("DB_POSTGRESDB_PORT") or "5432",
                   dbname=env.get("DB_POSTGRESDB_DATABASE") or "n8n", user=env.get("DB_POSTGRESDB_USER") or "postgres",
                   password=env.get("DB_POSTGRESDB_PASSWORD", ""), schema=env.get("DB_POSTGRESDB_SCHEMA") or "public")


APP = App(
    name="n8n", db_key_prefixes=("DB_POSTGRESDB_", "DB_TYPE"), env_updates=env_updates, database_of=database_of,
    login_of=login_of,
    seed=lambda app, scale, log: seed(app.url, admin_file(app), scale, log=log),
    fingerprint=lambda app: fingerprint(app.url, admin_file(app)), summary=summary)
