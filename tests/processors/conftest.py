"""The processors' tests use the shared peer fixtures (localstripe, the Authorize.Net double)."""

from __future__ import annotations

from tests.peers.fixtures import *  # noqa: F403  (fixtures are found by name)
from tests.peers.fixtures import STRIPE_PUBLISHABLE, STRIPE_SECRET, post_json  # noqa: F401
