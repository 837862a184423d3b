from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conflicts', '0003_bounds'),
    ]

    operations = [
        migrations.AddField(
            model_name='detectionrun',
            name='untested',
            field=models.JSONField(blank=True, default=list, help_text='The KPIs the run could not test, each with the reason (at most 1,000 are listed).'),
        ),
        migrations.AddField(
            model_name='detectionrun',
            name='untested_kpis',
            field=models.PositiveIntegerField(default=0, help_text='Active KPIs the run could not test.'),
        ),
    ]
