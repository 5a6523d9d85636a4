"""scripts/init_env.py: fresh and shared generated secrets (no docker)."""

import importlib.util
import os
import stat

from tests.support import ROOT

spec = importlib.util.spec_from_file_location("init_env", ROOT / "scripts/init_env.py")
init_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(init_env)


def values(path):
    return init_env._assignments(path.read_text())


def write(dir_, name, text):
    (dir_ / f"{name}.env.example").write_text(text)


def test_shared_placeholder_same_value_in_every_file(tmp_path):
    write(tmp_path, "db", "POSTGRES_PASSWORD=__GENERATE:db_pw__\nOTHER=__GENERATE__\n")
    write(tmp_path, "app", "DB_PASSWORD=__GENERATE:db_pw__\n"
                           "URI=postgresql://u:__GENERATE:db_pw__@db:5432/x\nKEY=__GENERATE__\n")
    assert init_env.main(tmp_path) == 0
    db, app = values(tmp_path / "db.env"), values(tmp_path / "app.env")
    pw = db["POSTGRES_PASSWORD"]
    assert len(pw) >= 24 and "__GENERATE" not in pw
    assert app["DB_PASSWORD"] == pw
    assert app["URI"] == f"postgresql://u:{pw}@db:5432/x"
    # plain __GENERATE__ stays a fresh value each time
    assert len({pw, db["OTHER"], app["KEY"]}) == 3
    for f in ("db.env", "app.env"):
        assert stat.S_IMODE(os.stat(tmp_path / f).st_mode) == 0o600


def test_two_names_get_two_values(tmp_path):
    write(tmp_path, "a", "X=__GENERATE:one__\nY=__GENERATE:two__\nZ=__GENERATE:one__\n")
    init_env.main(tmp_path)
    a = values(tmp_path / "a.env")
    assert a["X"] == a["Z"] != a["Y"]


def test_later_file_reuses_value_of_existing_file(tmp_path):
    """A database's env file made earlier (even from an older example with a
    plain __GENERATE__) keeps its password, and the app's new file gets it."""
    (tmp_path / "db.env").write_text("# made long ago\nPOSTGRES_PASSWORD=live-password-123\n")
    write(tmp_path, "db", "POSTGRES_PASSWORD=__GENERATE:db_pw__\n")
    write(tmp_path, "app", "URI=postgresql://u:__GENERATE:db_pw__@db/x\nPW=__GENERATE:db_pw__\n")
    init_env.main(tmp_path)
    assert (tmp_path / "db.env").read_text() == "# made long ago\nPOSTGRES_PASSWORD=live-password-123\n"
    app = values(tmp_path / "app.env")
    assert app == {"URI": "postgresql://u:live-password-123@db/x", "PW": "live-password-123"}


def test_value_read_back_from_inside_a_uri(tmp_path):
    (tmp_path / "app.env").write_text("URI=postgresql://u:from-uri-456@db/x\n")
    write(tmp_path, "app", "URI=postgresql://u:__GENERATE:db_pw__@db/x\n")
    write(tmp_path, "db", "POSTGRES_PASSWORD=__GENERATE:db_pw__\n")
    init_env.main(tmp_path)
    assert values(tmp_path / "db.env")["POSTGRES_PASSWORD"] == "from-uri-456"


def test_existing_files_never_rewritten_and_nothing_printed(tmp_path, capsys):
    write(tmp_path, "a", "X=__GENERATE:s__\n")
    init_env.main(tmp_path)
    before = (tmp_path / "a.env").read_text()
    init_env.main(tmp_path)
    assert (tmp_path / "a.env").read_text() == before
    secret = values(tmp_path / "a.env")["X"]
    assert secret not in capsys.readouterr().out


def test_project_examples_share_db_passwords(tmp_path):
    """The committed examples: each app's env file gets its database's password."""
    for name in ("n8n-db", "n8n", "letta-db", "letta"):
        (tmp_path / f"{name}.env.example").write_text((ROOT / f"env/{name}.env.example").read_text())
    init_env.main(tmp_path)
    n8n_db, n8n_app = values(tmp_path / "n8n-db.env"), values(tmp_path / "n8n.env")
    letta_db, letta_app = values(tmp_path / "letta-db.env"), values(tmp_path / "letta.env")
    assert n8n_app["DB_POSTGRESDB_PASSWORD"] == n8n_db["POSTGRES_PASSWORD"]
    assert n8n_app["DB_POSTGRESDB_USER"] == n8n_db["POSTGRES_USER"]
    assert n8n_app["DB_POSTGRESDB_DATABASE"] == n8n_db["POSTGRES_DB"]
    assert letta_app["LETTA_PG_URI"] == (f"postgresql://{letta_db['POSTGRES_USER']}:{letta_db['POSTGRES_PASSWORD']}"
                                         f"@letta-db:5432/{letta_db['POSTGRES_DB']}")
    assert n8n_db["POSTGRES_PASSWORD"] != letta_db["POSTGRES_PASSWORD"]
    assert len(n8n_app["N8N_ENCRYPTION_KEY"]) >= 24
