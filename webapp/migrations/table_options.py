"""Table options every migration uses."""

from alembic import op


def mysql_table_options() -> dict:
    """Keys and ids compare byte for byte on MySQL/MariaDB, as on SQLite and PostgreSQL:
    a binary collation that does not pad, so "a", "A" and "a " are three different keys."""
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return {}
    collation = "utf8mb4_nopad_bin" if bind.dialect.is_mariadb else "utf8mb4_0900_bin"
    return {"mysql_charset": "utf8mb4", "mysql_collate": collation, "mysql_engine": "InnoDB"}
