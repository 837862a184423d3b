"""Deliveries on a real Celery worker against the real Redis, to a real receiver.

The worker (tests/conftest.py) runs one task at a time; ``drained`` sends it a ping
and waits for the answer, so every task queued before has finished by then.
"""

import threading

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from config.celery_app import app
from notifications import services
from notifications.models import Channel, Delivery
from notifications.tasks import deliver_task
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SECRET = "a-secret-of-32-characters-long!!"


def drained() -> None:
    app.tasks["celery.ping"].delay().get(timeout=30)


def channel_to(url: str, events=("conflict.new",)) -> Channel:
    return Channel.objects.create(
        name="Receiver", kind="webhook", url=url, secret=SECRET, events=list(events)
    )


def test_a_503_is_retried_until_the_receiver_takes_it(worker, receiver):
    receiver.statuses = [503, 503, 200]
    channel_to(receiver.url)

    with transaction.atomic():
        services.event_dispatch(name="conflict.new", title="New conflict")

    requests = receiver.wait_for(3)
    drained()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        "delivered",
        3,
        200,
    )
    # The same delivery each time: a receiver drops repeats by this id.
    assert {r.headers["X-Ducttape-Delivery"] for r in requests} == {str(delivery.uuid)}


def test_a_task_delivered_twice_sends_once(worker, receiver):
    channel_to(receiver.url)
    with transaction.atomic():
        services.event_dispatch(name="conflict.new", title="New conflict")
    delivery = Delivery.objects.get()

    # As a broker redelivers a task (acks_late): the same delivery, twice more.
    deliver_task.delay(delivery.pk)
    deliver_task.delay(delivery.pk)
    drained()

    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_two_workers_attempting_one_delivery_at_once_send_once(receiver):
    receiver.delay = 0.5  # the first attempt is still in flight when the second starts
    channel_to(receiver.url)
    with transaction.atomic():
        event = services.event_dispatch(name="conflict.new", title="New conflict")
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(status="pending", attempts=0)
    start = threading.Barrier(2)
    results = []

    def attempt() -> None:
        from django.db import connection

        try:
            start.wait(timeout=10)
            results.append(services.delivery_attempt(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Eager mode delivered it once at commit; the two racing attempts add one more.
    assert len(receiver.requests) == 2
    assert sorted(r is None for r in results) == [False, True]


def test_nothing_is_sent_for_a_rolled_back_transaction(worker, receiver):
    channel_to(receiver.url)

    def change_that_fails() -> None:
        with transaction.atomic():
            services.event_dispatch(name="conflict.new", title="Rolled back")
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with transaction.atomic():
        services.event_dispatch(name="conflict.new", title="Kept")
    receiver.wait_for(1)
    drained()

    assert [r.headers["X-Ducttape-Event"] for r in receiver.requests] == [
        "conflict.new"
    ]
    assert list(Delivery.objects.values_list("event__title", flat=True)) == ["Kept"]


def test_a_failing_channel_never_fails_the_request_that_caused_the_event(worker):
    Channel.objects.create(
        name="Down",
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        secret=SECRET,
        events=["conflict.status_changed"],
    )
    cco = factories.cco_member()
    conflict = factories.ConflictFactory()
    api = APIClient()
    api.force_authenticate(cco)

    response = api.post(
        f"/api/v1/conflicts/{conflict.pk}/transition/",
        {
            "status": "acknowledged",
            "note": "Seen.",
            "owner": cco.username,
            "due_date": "2099-12-31",
        },
        format="json",
    )
    drained()

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "acknowledged"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        "retrying",
        1,
        None,
    )
