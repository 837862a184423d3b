"""/api/v1/notification-channels/, -subscriptions/ and -deliveries/ with a real client."""

import pytest

from notifications.models import Channel, Delivery, Subscription

pytestmark = pytest.mark.django_db

SECRET = "a-secret-of-32-characters-long!!"
CHANNELS = "/api/v1/notification-channels/"
SUBSCRIPTIONS = "/api/v1/notification-subscriptions/"
DELIVERIES = "/api/v1/notification-deliveries/"


def as_user(api, user):
    api.force_authenticate(user)
    return api


def test_the_cco_team_creates_a_webhook_and_never_reads_its_secret_back(api, cco):
    response = as_user(api, cco).post(
        CHANNELS,
        {
            "name": "Ops",
            "kind": "webhook",
            "url": "https://hooks.example.com/x",
            "secret": SECRET,
            "events": ["conflict.new", "digest", "conflict.new"],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert "secret" not in body
    assert (body["has_secret"], body["events"], body["is_active"]) == (
        True,
        ["conflict.new", "digest"],
        True,
    )
    assert Channel.objects.get(name="Ops").secret == SECRET
    listed = api.get(CHANNELS).json()
    assert [c["name"] for c in listed["results"]] == [
        "CCO team and silo managers (email)",
        "Ops",
    ]
    assert all("secret" not in c for c in listed["results"])

    # A change without a secret keeps the stored one.
    changed = api.patch(f"{CHANNELS}{body['id']}/", {"is_active": False}, format="json")
    assert changed.status_code == 200
    assert Channel.objects.get(name="Ops").secret == SECRET


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"url": "ftp://example.com/x"}, {"url": ["Use an http or https URL."]}),
        ({"url": "not a url"}, {"url": ["Enter a valid URL."]}),
        (
            {"events": ["conflict.nope"]},
            {
                "events": [
                    "Unknown event 'conflict.nope'; choose among: conflict.new, conflict.high, "
                    "conflict.status_changed, cycle.phase_changed, signoff.voided, "
                    "guardrail.breached, digest."
                ]
            },
        ),
        (
            {"events": "digest"},
            {"events": ['Expected a list of items but got type "str".']},
        ),
        (
            {"secret": "short"},
            {
                "secret": [
                    "A webhook needs a secret of at least 16 characters to sign its body."
                ]
            },
        ),
        ({"kind": "pigeon"}, {"kind": ['"pigeon" is not a valid choice.']}),
    ],
)
def test_bad_channels_are_refused_with_the_field_named(api, cco, fields, errors):
    body = {
        "name": "Ops",
        "kind": "webhook",
        "url": "https://hooks.example.com/x",
        "secret": SECRET,
        "events": ["digest"],
        **fields,
    }
    response = as_user(api, cco).post(CHANNELS, body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert not Channel.objects.filter(name="Ops").exists()


@pytest.mark.parametrize("role", ["manager_a", "reader"])
def test_channels_and_deliveries_are_the_cco_teams_alone(api, role, request):
    user = request.getfixturevalue(role)
    as_user(api, user)
    for method, path in [
        ("get", CHANNELS),
        ("post", CHANNELS),
        ("get", DELIVERIES),
        ("post", f"{CHANNELS}{Channel.objects.get().pk}/test/"),
    ]:
        response = getattr(api, method)(path, {}, format="json")
        assert response.status_code == 403, (method, path)
        assert response.json() == {
            "detail": "Only the CCO team may manage notification channels and read "
            "deliveries."
        }


def test_anonymous_callers_are_refused(api):
    assert api.get(CHANNELS).status_code == 401
    assert api.get(SUBSCRIPTIONS).status_code == 401


def test_send_test_goes_to_the_receiver_and_shows_in_the_log(
    api, cco, receiver, django_capture_on_commit_callbacks
):
    channel = Channel.objects.create(
        name="Local", kind="webhook", url=receiver.url, secret=SECRET, events=[]
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(api, cco).post(f"{CHANNELS}{channel.pk}/test/")

    assert response.status_code == 202
    key = response.json()["event_key"]
    (request,) = receiver.wait_for(1)
    assert request.headers["X-Ducttape-Event"] == "test"
    log = api.get(DELIVERIES, {"event_key": key}).json()["results"]
    assert [(d["channel"], d["status"], d["response_code"]) for d in log] == [
        ("Local", "delivered", 200)
    ]


def test_a_manager_subscribes_their_own_email_once(api, manager_a, manager_b):
    Subscription.objects.create(user=manager_b, events=["digest"])
    as_user(api, manager_a)

    created = api.post(
        SUBSCRIPTIONS, {"events": ["conflict.new", "signoff.voided"]}, format="json"
    )
    again = api.post(SUBSCRIPTIONS, {"events": ["digest"]}, format="json")
    listed = api.get(SUBSCRIPTIONS).json()["results"]
    other = Subscription.objects.get(user=manager_b)

    assert created.status_code == 201, created.content
    assert created.json()["email"] == manager_a.email
    assert again.status_code == 400
    assert again.json() == {
        "events": ["You have a subscription already: change it with PATCH."]
    }
    assert [s["email"] for s in listed] == [manager_a.email]
    assert (
        api.patch(
            f"{SUBSCRIPTIONS}{other.pk}/", {"events": []}, format="json"
        ).status_code
        == 404
    )
    # A user in the body is not a field: nobody subscribes someone else.
    api.patch(
        f"{SUBSCRIPTIONS}{created.json()['id']}/", {"user": manager_b.pk}, format="json"
    )
    assert Subscription.objects.get(pk=created.json()["id"]).user == manager_a


def test_bi_readers_do_not_subscribe_and_a_user_without_email_is_told(
    api, reader, manager_a
):
    response = as_user(api, reader).post(
        SUBSCRIPTIONS, {"events": ["digest"]}, format="json"
    )
    assert response.status_code == 403
    manager_a.email = ""
    manager_a.save()
    response = as_user(api, manager_a).post(
        SUBSCRIPTIONS, {"events": ["digest"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "events": [
            "Your account has no email address: ask an administrator to add one."
        ]
    }


def test_the_delivery_log_lists_in_constant_queries(
    api, cco, django_assert_num_queries, django_capture_on_commit_callbacks
):
    from notifications import services

    Channel.objects.create(
        name="Down",
        kind="webhook",
        url="http://127.0.0.1:9/",
        secret=SECRET,
        events=["digest"],
    )
    as_user(api, cco)

    def listing():
        return api.get(DELIVERIES, {"limit": 1000})

    with django_capture_on_commit_callbacks(execute=True):
        services.event_dispatch(name="digest", title="One")
    listing()  # the user's roles are read once, then remembered on the user
    with django_assert_num_queries(2):  # the count and the page
        assert len(listing().json()["results"]) == 1
    for n in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            services.event_dispatch(name="digest", title=f"More {n}")
    with django_assert_num_queries(2):  # the count and the page
        assert len(listing().json()["results"]) == 6
    assert Delivery.objects.count() == 6


def test_the_admin_action_sends_a_test_to_each_selected_channel(
    client, cco, receiver, django_capture_on_commit_callbacks
):
    channel = Channel.objects.create(
        name="Local", kind="webhook", url=receiver.url, secret=SECRET, events=[]
    )
    client.force_login(cco)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/notifications/channel/",
            {"action": "send_test", "_selected_action": [channel.pk]},
            follow=True,
        )

    assert response.status_code == 200
    (request,) = receiver.wait_for(1)
    assert request.headers["X-Ducttape-Event"] == "test"
    assert [str(m) for m in response.context["messages"]] == [
        "Test sent to Local: its delivery is in the delivery log."
    ]
    assert Delivery.objects.get().status == "delivered"


def test_the_admin_form_never_shows_the_secret_and_keeps_it_when_left_empty(
    client, cco
):
    channel = Channel.objects.create(
        name="Local",
        kind="webhook",
        url="https://hooks.example.com/x",
        secret=SECRET,
        events=["digest"],
    )
    client.force_login(cco)
    path = f"/admin/notifications/channel/{channel.pk}/change/"

    page = client.get(path)
    changed = client.post(
        path,
        {
            "name": "Local",
            "kind": "webhook",
            "url": "https://hooks.example.com/y",
            "secret": "",
            "email_to": "",
            "events": ["digest", "conflict.new"],
            "is_active": "on",
        },
    )

    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert changed.status_code == 302, changed.content.decode()[:2000]
    channel.refresh_from_db()
    assert (channel.url, channel.secret, channel.events) == (
        "https://hooks.example.com/y",
        SECRET,
        ["digest", "conflict.new"],
    )
