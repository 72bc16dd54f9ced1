"""The Value field's live check: while an editor types into an Add or Edit form, htmx posts
the value here (after a pause in typing) and shows the answer under the field. The answer is
what Save would say, from the same form rules: "Valid JSON", or the error with its line and
column. Nothing is written."""

from __future__ import annotations

from markupsafe import Markup

from . import bp
from .forms import JsonCheckForm
from .helpers import require_role


@bp.post("/json-check")
def json_check():
    require_role("editor")  # only editors see the forms that ask
    form = JsonCheckForm()
    if form.validate():
        return Markup('<span class="json-ok">Valid JSON</span>')
    return Markup('<span class="json-error">{}</span>').format(" ".join(form.value.errors))
