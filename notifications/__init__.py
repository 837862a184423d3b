"""Notifications: events, channels (email, Slack, Microsoft Teams, signed webhooks),
subscriptions and the delivery log.

The module knows events, payloads and channels, not the apps that cause the events:
those call :func:`notifications.services.event_dispatch` from their own services.
"""
