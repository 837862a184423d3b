"""Celery tasks of notifications: thin, and safe to run twice (the service locks)."""

from celery import shared_task


@shared_task(name="notifications.deliver", acks_late=True, ignore_result=True)
def deliver_task(delivery_id: int) -> None:
    """Attempt one delivery (see notifications.services.delivery_attempt)."""
    from notifications.services import delivery_attempt

    delivery_attempt(delivery_id=delivery_id)


@shared_task(name="notifications.resume", ignore_result=True)
def deliveries_resume_task() -> int:
    """Enqueue due deliveries nobody picked up (see deliveries_resume)."""
    from notifications.services import deliveries_resume

    return deliveries_resume()


@shared_task(name="notifications.weekly_digest", ignore_result=True)
def weekly_digest_task() -> bool:
    """Send this ISO week's digest, once however often it runs."""
    from notifications.digest import digest_send

    return digest_send() is not None
