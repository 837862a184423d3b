"""Signals that apps above metrics listen to (metrics never imports them)."""

from django.dispatch import Signal

#: Sent after the transaction that created or changed measurements commits, with
#: ``kpi_ids``: the KPIs whose measurements changed. The shared-goal roll-up listens.
measurements_changed = Signal()
