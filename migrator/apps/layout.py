"""The applications' place in the unified instance: their schemas, their login
roles' defaults and how PgBouncer pools them. The one home of this knowledge
(issue 27): rolesconfig.py and pooler.py take their defaults from here, and
sql/10-apps.sql's schema registry is checked against SCHEMAS by
tests/unit/test_app_layout.py. No module here defines APP: this is data, not an
application the registry drives (rag has no container of its own).
"""

from __future__ import annotations

# (schema, app, search_order): DESIGN.md's layout, installed by sql/10-apps.sql into
# consolidation_admin.app_schema. search_order 1 is the app's main schema.
SCHEMAS = (
    ("n8n", "n8n", 1),
    ("letta_agents", "letta", 1),
    ("letta_embeddings", "letta", 2),
    ("rag_documents", "rag", 1),
    ("rag_embeddings", "rag", 2),
)

# app -> (role name, connection limit, statement timeout), the defaults of [roles.<app>]
# (docs/roles.md). Letta's SQLAlchemy pool is 20 + 10 overflow; n8n's own DB statement
# timeout defaults to 5 min.
LOGINS = {
    "n8n": ("n8n", 20, "5min"),
    "letta": ("letta", 40, "5min"),
    "rag": ("rag", 20, "2min"),
}

# app -> PgBouncer pool_mode, the defaults of [pooler] pool_modes (docs/pooling.md).
# Letta's scheduler releases an advisory lock on "the same" session it took it on; n8n keeps no
# session state (docs/pooling.md, "Pool modes").
POOL_MODES = {"n8n": "transaction", "letta": "session"}
