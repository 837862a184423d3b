"""Data steps for the migrations that add the bounds of ``core.bounds``.

A CHECK cannot be added while a stored row breaks it, so these run first. They use the
historical models that a migration hands them (``apps``), never the current ones.
"""

from collections.abc import Callable, Iterable

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import Q
from django.db.models.functions import Left, Length

from core.bounds import MAX_MAGNITUDE

#: (app label, model name, field names)
FieldsOf = Iterable[tuple[str, str, tuple[str, ...]]]
#: What RunPython calls: the historical models and the schema editor.
Step = Callable[[StateApps, BaseDatabaseSchemaEditor], None]


def refuse_out_of_bound_figures(fields: FieldsOf) -> Step:
    """Return a RunPython step that stops the migration, naming the rows at fault,
    while any of ``fields`` holds a figure of magnitude 1e15 or more.

    Such a figure is a typo or an attack, never a KPI; deleting or clipping it silently
    would change what people reported, so the operator decides (the message says how).
    """

    def step(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        problems: list[str] = []
        for app_label, model_name, names in fields:
            model = apps.get_model(app_label, model_name)
            for name in names:
                outside = Q(**{f"{name}__gte": MAX_MAGNITUDE}) | Q(
                    **{f"{name}__lte": -MAX_MAGNITUDE}
                )
                rows = list(
                    model._default_manager.filter(outside)
                    .order_by("pk")
                    .values_list("pk", name)[:10]
                )
                problems.extend(
                    f"{app_label}.{model_name} id {pk}: {name} = {value!r}"
                    for pk, value in rows
                )
        if problems:
            raise RuntimeError(
                "These stored figures are not below 1e15 in magnitude, which ducttape "
                "now requires (no KPI reaches it; see README, 'Data rules held by the "
                "database'). Correct or delete them in the admin, then migrate again:\n"
                + "\n".join(problems)
            )

    return step


def truncate_long_texts(fields: FieldsOf, limit: int) -> Step:
    """Return a RunPython step that cuts the texts in ``fields`` to ``limit`` characters.

    Such texts (megabytes of "description") came from before the limit existed; the
    first ``limit`` characters keep what a person wrote.
    """

    def step(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        for app_label, model_name, names in fields:
            model = apps.get_model(app_label, model_name)
            for name in names:
                model._default_manager.annotate(length=Length(name)).filter(
                    length__gt=limit
                ).update(**{name: Left(name, limit)})

    return step
