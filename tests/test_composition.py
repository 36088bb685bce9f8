"""The composition root builds each shared part once and hands it to the parts that use it."""

import gc

from relay.slack.directory import Directory
from relay.store.local import ThreadLocalDb


def test_one_database_handle_and_one_directory_per_relay(sandbox, make_relay):
    relay = make_relay()
    parts = relay.interactions
    for db in (parts.seen.db, parts.home.read.db, parts.clicks.db, parts.clicks.renderer.db, relay.delivery.db):
        assert db is relay.db
    gc.collect()
    mine = [o for o in gc.get_objects() if isinstance(o, ThreadLocalDb) and o.path == relay.db.path]
    assert mine == [relay.db]
    directories = [o for o in gc.get_objects() if isinstance(o, Directory) and o.db is relay.db]
    assert directories == [relay.directory]


def test_delivery_asks_the_secrets_workflow_whether_launch_is_offered(sandbox, make_relay):
    relay = make_relay()
    assert relay.delivery.launchable == relay.secrets.launchable
