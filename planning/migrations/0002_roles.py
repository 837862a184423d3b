"""Create the three role groups with their model permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SILO_MANAGERS = "Silo managers"
CCO_TEAM = "CCO team"
BI_READERS = "BI readers"

ALL_ACTIONS = ("view", "add", "change", "delete")

# (app_label, model) pairs. Frozen here: a migration must not import app code.
DOMAIN_MODELS = [
    ("metrics", "silo"),
    ("metrics", "kpi"),
    ("metrics", "measurement"),
    ("metrics", "impactlink"),
    ("goals", "goal"),
    ("goals", "sharedgoal"),
    ("goals", "contribution"),
    ("planning", "planningcycle"),
    ("planning", "priority"),
    ("planning", "responsibility"),
    ("planning", "fundingallocation"),
    ("planning", "signoff"),
]
# What silo managers may write (their own silos only: querysets do the scoping).
MANAGER_WRITES = {("metrics", "kpi"), ("metrics", "measurement"), ("goals", "goal")}


def grants():
    manager, cco, reader = [], [], []
    for app_label, model in DOMAIN_MODELS:
        reader.append((app_label, "view", model))
        cco.extend((app_label, action, model) for action in ALL_ACTIONS)
        actions = ALL_ACTIONS if (app_label, model) in MANAGER_WRITES else ("view",)
        manager.extend((app_label, action, model) for action in actions)
    return {SILO_MANAGERS: manager, CCO_TEAM: cco, BI_READERS: reader}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, triples in grants().items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = [
            Permission.objects.get(
                content_type__app_label=app_label, codename=f"{action}_{model}"
            )
            for app_label, action, model in triples
        ]
        group.permissions.set(permissions)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=[SILO_MANAGERS, CCO_TEAM, BI_READERS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("metrics", "0001_initial"),
        ("goals", "0001_initial"),
        ("planning", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
