"""Delinea's own Python SDK (python-tss-sdk) against the Secret Server stand-in.

The SDK is the vendor's reading of the API: where it and the stand-in disagree on what the
relay also uses (token grant with and without a domain, the health check that decides the
server type, secret search, folder read), the stand-in is wrong."""

from __future__ import annotations

import json

import pytest
from delinea.secrets.server import (
    DomainPasswordGrantAuthorizer,
    PasswordGrantAuthorizer,
    SecretServer,
    SecretServerClientError,
)

from relay.sandbox.secret_server import SecretServerStandIn


@pytest.fixture
def ss():
    with SecretServerStandIn() as standin:
        alice = standin.add_user("alice", "alice-pw")
        standin.add_user("dana", "dana-pw", domain="CORP")
        folder = standin.add_folder("Databases", "\\Production\\Databases")
        standin.add_secret("prod-db admin", folder_id=folder, viewers=[alice],
                           fields={"password": "FIELD-VALUE-x"})
        standin.add_secret("wiki admin", viewers=[alice])
        standin.folder = folder
        yield standin


def token_grants(ss):
    return [c.body for c in ss.calls_to(r"^/oauth2/token$", "POST")]


def test_password_grant_after_the_sdks_health_check(ss):
    auth = PasswordGrantAuthorizer(ss.base_url, "alice", "alice-pw")

    assert auth.get_access_token() in ss.issued_tokens()
    # the SDK found a Secret Server (not a platform) by its health check, then used /oauth2/token
    assert auth._server_type == "secret_server"
    assert [c.path for c in ss.calls][:2] == ["/api/v1/healthcheck", "/oauth2/token"]
    assert token_grants(ss) == [{"username": "alice", "password": "***", "grant_type": "password"}]


def test_domain_password_grant(ss):
    auth = DomainPasswordGrantAuthorizer(ss.base_url, "dana", "CORP", "dana-pw")

    assert auth.get_access_token() in ss.issued_tokens()
    assert token_grants(ss)[0]["domain"] == "CORP"
    with pytest.raises(SecretServerClientError):
        PasswordGrantAuthorizer(ss.base_url, "dana", "dana-pw").get_access_token()   # no domain


def test_secret_search_and_folder_read(ss):
    server = SecretServer(ss.base_url, PasswordGrantAuthorizer(ss.base_url, "alice", "alice-pw"))

    found = json.loads(server.search_secrets(query_params={"filter.searchText": "prod"}))
    folder = server.get_folder(ss.folder)

    assert [r["name"] for r in found["records"]] == ["prod-db admin"]
    assert found["total"] == 1 and "FIELD-VALUE" not in json.dumps(found)
    assert (folder["id"], folder["folderName"], folder["folderPath"]) == \
        (ss.folder, "Databases", "\\Production\\Databases")


def test_refused_password_is_a_client_error_with_the_servers_words(ss):
    with pytest.raises(SecretServerClientError) as err:
        PasswordGrantAuthorizer(ss.base_url, "alice", "wrong").get_access_token()
    assert err.value.message == "invalid_grant"


def test_the_sdk_finds_the_platform_stand_in_and_its_vault():
    with SecretServerStandIn(platform=True) as ss:
        svc = ss.add_user("svc-relay", "client-secret-1")
        ss.add_secret("prod-db admin", viewers=[svc])
        server = SecretServer(ss.platform_url, PasswordGrantAuthorizer(ss.platform_url, "svc-relay",
                                                                       "client-secret-1"))

        found = json.loads(server.search_secrets(query_params={"filter.searchText": "prod"}))

        assert server.authorizer._server_type == "platform"
        assert server.base_url == ss.base_url                 # the default, active vault
        assert [r["name"] for r in found["records"]] == ["prod-db admin"]
        assert [c.body for c in ss.calls_to(r"xpmplatform$")] == [
            {"client_id": "svc-relay", "client_secret": "***", "grant_type": "client_credentials",
             "scope": "xpmheadless"}]
