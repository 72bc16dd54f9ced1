"""The README is the manual: these fail when a setting, a CLI command or a route is added
without being documented there."""

import re
from pathlib import Path

import click

from webapp.cli import main
from webapp.config import settings_documentation

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    missing = [name for name, _default, _doc in settings_documentation() if f"`{name}`" not in README]
    assert not missing, f"settings missing from README: {missing}"


def test_every_route_is_documented(app):
    undocumented = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.endswith("/<ti_id>/"):
            continue  # static files; the empty-key route exists only to answer 422
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if f"{method} {path}" not in README:
                undocumented.append(f"{method} {path}")
    assert not undocumented, f"routes missing from README: {undocumented}"


def test_every_cli_command_is_documented(app):
    commands = dict(main.commands)
    commands.update(app.cli.commands)
    names = []
    for name, command in commands.items():
        if isinstance(command, click.Group):
            names += [f"{name} {sub}" for sub in command.commands]
        else:
            names.append(name)
    documented_groups = {"db"}  # Flask-Migrate's own commands; the README names the one users need
    missing = [
        name for name in names
        if f"taskstore {name}" not in README and name.split()[0] not in documented_groups
    ]
    assert not missing, f"commands missing from README: {missing}"
    assert "taskstore db upgrade" in README
