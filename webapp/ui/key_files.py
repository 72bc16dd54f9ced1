"""Export a task instance's or an asset's keys as a JSON file, and import such a file (the
store checks it whole, then writes all of it or nothing; ``store.key_files``)."""

from __future__ import annotations

import json

from flask import current_app, make_response
from werkzeug.utils import secure_filename

from .. import store
from ..errors import Conflict, InvalidInput
from ..transactions import committed
from .forms import ImportKeysForm
from .helpers import actor
from .keys import back_to, keys_page
from .owners import Owner, owner_route


@owner_route("/export", ["GET"], editor=False)
def export_keys(owner: Owner):
    document = committed(lambda: store.export_document(owner.scope))
    response = make_response(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    response.mimetype = "application/json"
    name = secure_filename(owner.export_name) or "keys"
    response.headers.set("Content-Disposition", "attachment", filename=f"{name}.keys.json")
    return response


@owner_route("/import", ["POST"])
def import_keys(owner: Owner):
    form = ImportKeysForm()
    if form.validate_on_submit():
        try:
            entries = store.parse_key_file(form.file.data.read(), owner.scope,
                                           max_value_bytes=current_app.config["TASKSTORE"].max_value_bytes)
            result = committed(lambda: store.import_keys(owner.scope, entries, replace=form.replace.data,
                                                         actor=actor()))
        except (InvalidInput, Conflict) as exc:
            form.file.errors = [exc.message]
        else:
            replaced = f" ({result.replaced} replaced)" if result.replaced else ""
            total = result.created + result.replaced
            return back_to(owner, f"Imported {total} key{'' if total == 1 else 's'}{replaced}.")
    return keys_page(owner, import_form=form), 422
