"""Give the CCO team the notification models, and keep today's alert mail as a
channel: high-severity conflicts mailed to the CCO team and both silos' managers."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CCO_TEAM = "CCO team"
# Frozen here: a migration must not import app code.
CCO_GRANTS = [
    ("add", "channel"),
    ("change", "channel"),
    ("delete", "channel"),
    ("view", "channel"),
    ("view", "subscription"),
    ("view", "event"),
    ("view", "delivery"),
]
DEFAULT_CHANNEL = "CCO team and silo managers (email)"


def forward(apps, schema_editor):
    app_config = apps.get_app_config("notifications")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=CCO_TEAM)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notifications",
            codename__in=[f"{action}_{model}" for action, model in CCO_GRANTS],
        )
    )
    apps.get_model("notifications", "Channel").objects.get_or_create(
        name=DEFAULT_CHANNEL,
        defaults={
            "kind": "email",
            "to_cco_team": True,
            "to_silo_managers": True,
            "events": ["conflict.high"],
        },
    )


def backward(apps, schema_editor):
    apps.get_model("notifications", "Channel").objects.filter(name=DEFAULT_CHANNEL).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("planning", "0002_roles"),
    ]

    operations = [migrations.RunPython(forward, backward)]
