"""The token page (a user's own API token, shown once) and GET /api/v1/."""

import pytest
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

PAGE = "/account/token/"


def test_anonymous_visitors_go_to_the_login_and_users_without_a_role_are_refused(
    client,
):
    from tests import factories

    assert client.get(PAGE)["Location"] == f"/admin/login/?next={PAGE}"
    client.force_login(factories.UserFactory(username="nobody"))
    assert client.get(PAGE).status_code == 403


def test_a_user_creates_a_token_sees_it_once_and_revokes_it(
    client, api, reader, manager_a
):
    other = Token.objects.create(user=manager_a)
    client.force_login(reader)

    empty = client.get(PAGE).content.decode()
    created = client.post(PAGE, {"action": "create"})
    key = Token.objects.get(user=reader).key
    again = client.get(PAGE).content.decode()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    works = api.get("/api/v1/silos/").status_code
    revoked = client.post(PAGE, {"action": "revoke"})
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert "You have no token." in empty
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    assert f'value="{key}"' in created.content.decode()
    assert key not in again
    assert "You have a token, created on" in again
    assert works == 200
    assert revoked.status_code == 200
    assert "Your token is revoked" in revoked.content.decode()
    assert not Token.objects.filter(user=reader).exists()
    assert api.get("/api/v1/silos/").status_code == 401
    # Another user's token is never touched.
    assert Token.objects.get(user=manager_a) == other


def test_creating_again_replaces_the_old_token(client, cco):
    client.force_login(cco)
    client.post(PAGE, {"action": "create"})
    first = Token.objects.get(user=cco).key
    client.post(PAGE, {"action": "create"})

    assert Token.objects.filter(user=cco).count() == 1
    assert Token.objects.get(user=cco).key != first


def test_an_unknown_action_is_a_400_that_says_what_to_do(client, cco):
    client.force_login(cco)

    response = client.post(PAGE, {"action": "steal"})

    assert response.status_code == 400
    assert "Choose to create or to revoke a token." in response.content.decode()
    assert not Token.objects.exists()


def test_the_header_links_to_the_token_page_for_every_role(
    client, reader, manager_a, cco
):
    for user in (reader, manager_a, cco):
        client.force_login(user)
        assert 'href="/account/token/"' in client.get(PAGE).content.decode()


def test_the_api_root_lists_every_collection(api, reader):
    api.force_authenticate(reader)

    body = api.get("/api/v1/").json()

    base = "http://testserver/api/v1/"
    assert body == {
        "conflicts": f"{base}conflicts/",
        "cycles": f"{base}cycles/",
        "detection-runs": f"{base}detection-runs/",
        "figures": f"{base}figures/",
        "goals": f"{base}goals/",
        "kpis": f"{base}kpis/",
        "links": f"{base}links/",
        "measurements": f"{base}measurements/",
        "notification-channels": f"{base}notification-channels/",
        "notification-deliveries": f"{base}notification-deliveries/",
        "notification-subscriptions": f"{base}notification-subscriptions/",
        "rollup-runs": f"{base}rollup-runs/",
        "shared-goals": f"{base}shared-goals/",
        "silos": f"{base}silos/",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
    }


def test_the_api_root_refuses_anonymous_callers(api):
    assert api.get("/api/v1/").status_code == 401
