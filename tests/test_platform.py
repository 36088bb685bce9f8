"""Delinea Platform: the relay account is a platform service user (client credentials, scope
xpmheadless) and the vault's API URL comes from the vault broker, as python-tss-sdk does it."""

from __future__ import annotations

import pytest

from relay import checks
from relay.errors import AuthenticationFailed
from relay.sandbox import scenario
from relay.sandbox.secret_server import SecretServerStandIn
from relay.ss.client import RelayCredentials, SecretServerClient
from relay.store import db as store

TOKEN = "/identity/api/oauth2/token/xpmplatform"
VAULTS = "/vaultbroker/api/vaults"


@pytest.fixture
def tenant():
    with SecretServerStandIn(platform=True) as ss:
        ss.svc = ss.add_user("svc-relay", "client-secret-1")
        ss.alice = ss.add_user("alice", "alice-pw")
        yield ss


def client_for(ss, auth="auto", secret="client-secret-1"):
    return SecretServerClient(ss.platform_url, credentials=RelayCredentials("svc-relay", secret),
                              auth=auth, retry_seconds=1.0, timeout=5.0)


def test_relay_account_uses_client_credentials_and_the_default_active_vault(tenant):
    with client_for(tenant) as client:
        me = client.current_user()

        assert (client.detect_flavour(), me.username) == ("platform", "svc-relay")
        assert client.base_url == tenant.base_url              # the default, active vault
    # detection as python-tss-sdk does it, then the grant, the vault broker, the vault's API
    assert [(c.method, c.path) for c in tenant.calls] == [
        ("GET", "/health"), ("POST", TOKEN), ("GET", VAULTS), ("GET", "/api/v1/users/current")]
    [grant] = tenant.calls_to(TOKEN)
    assert grant.body == {"grant_type": "client_credentials", "client_id": "svc-relay",
                          "client_secret": "***", "scope": "xpmheadless"}
    assert [c.user for c in tenant.calls_to(VAULTS)] == ["svc-relay"]


def test_auth_platform_skips_detection_and_password_stays_on_ss(tenant):
    with client_for(tenant, auth="platform") as client:
        client.current_user()
    assert "/health" not in [c.path for c in tenant.calls]
    with SecretServerStandIn() as plain:
        plain.add_user("svc-relay", "client-secret-1")
        with SecretServerClient(plain.base_url, credentials=RelayCredentials("svc-relay", "client-secret-1"),
                                auth="auto", retry_seconds=1.0) as client:
            client.current_user()
            assert client.detect_flavour() == "password"
        assert [c.path for c in plain.calls][:2] == ["/api/v1/healthcheck", "/oauth2/token"]


def test_refused_client_secret_is_authentication_failed(tenant):
    with client_for(tenant, secret="wrong") as client, pytest.raises(AuthenticationFailed):
        client.current_user()
    assert tenant.calls_to(VAULTS) == []


def test_people_sign_in_at_the_vault(tenant):
    with client_for(tenant) as client:
        tokens = client.login_user("alice", "alice-pw")
        assert client.as_user(tokens).current_user().username == "alice"
    assert [c.path for c in tenant.calls if c.path.endswith("/token") or "token/" in c.path] == [
        TOKEN, "/oauth2/token"]


def test_check_names_the_flavour_and_the_vault(tmp_path):
    sb = scenario.start(platform=True)
    try:
        path = str(tmp_path / "c.db")
        store.migrate(store.open_db(path))
        results = {c.name: c for c in checks.run_checks(sb.config(path))}
        platform_url, vault_url = sb.ss.platform_url, sb.ss.base_url
    finally:
        sb.stop()
    assert all(c.ok for c in results.values()), [c.line() for c in results.values()]
    assert results["secret server reachable"].line() == (
        f"ok   secret server reachable: {platform_url} answers its health check: Delinea Platform "
        f"tenant (service user, client credentials; vault found by the vault broker)")
    assert results["relay account login"].line() == (
        f"ok   relay account login: signed in as {scenario.RELAY_USERNAME} (platform service user; "
        f"vault {vault_url})")
