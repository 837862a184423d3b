from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conflicts', '0004_untested_kpis'),
    ]

    operations = [
        migrations.AddField(
            model_name='detectionrun',
            name='method',
            field=models.CharField(choices=[('drivers', 'Common drivers removed, one-sided tests (the default)'), ('pairwise', 'Pairwise tests of the changes as they are (the first method)')], default='drivers', max_length=10),
        ),
        migrations.AddField(
            model_name='detectionrun',
            name='parameters',
            field=models.JSONField(blank=True, default=dict, help_text="The method's constants, as the run used them."),
        ),
        migrations.AddField(
            model_name='detectionrun',
            name='drivers',
            field=models.JSONField(blank=True, default=list, help_text='The company-wide drivers the run found: per grid, the KPIs that move with each, and its share of the variance.'),
        ),
        migrations.AddField(
            model_name='detectionrun',
            name='high_alerts',
            field=models.PositiveIntegerField(default=0, help_text='High-severity conflicts under review the run mailed about (new, reopened, or become high).'),
        ),
        migrations.AddField(
            model_name='conflict',
            name='grid',
            field=models.CharField(blank=True, choices=[('weekly', 'Weeks'), ('monthly', 'Months'), ('quarterly', 'Quarters')], help_text="The periods the evidence is in (the coarser KPI's): the lag counts them.", max_length=10),
        ),
        migrations.AddField(
            model_name='conflict',
            name='effect',
            field=models.FloatField(blank=True, help_text="Change of the affected KPI's value (its unit) per unit change of the leader's beyond what the common drivers explain, at the lag.", null=True),
        ),
        migrations.AddField(
            model_name='conflict',
            name='effect_low',
            field=models.FloatField(blank=True, help_text='95% CI, low end.', null=True),
        ),
        migrations.AddField(
            model_name='conflict',
            name='effect_high',
            field=models.FloatField(blank=True, help_text='95% CI, high end.', null=True),
        ),
        migrations.AddField(
            model_name='conflict',
            name='effect_step',
            field=models.FloatField(blank=True, help_text='A typical change of the leader beyond the drivers (its unit), to say the effect in words.', null=True),
        ),
    ]
