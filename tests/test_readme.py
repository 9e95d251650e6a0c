"""What README.md tells a newcomer about push works as written (issue 17, item 17): the
default quiet hours, the request that turns them off, FCM_URL's template form."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.core.push import _check_fcm_url
from tests.accounts.factories import sign_in_resident

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PREFERENCES = "/api/v1/me/notification-preferences"


async def test_quiet_hours_as_the_readme_says(client, caplog):
    assert "22:00–06:00 Hanoi\ntime" in README
    [off] = re.findall(r"`PUT " + PREFERENCES + r"` with `(\{.*?\})`", README, re.S)
    resident = await sign_in_resident(client, caplog)
    defaults = (await client.get(PREFERENCES, headers=resident["headers"])).json()
    assert defaults["quiet_hours"] == {"start": "22:00", "end": "06:00"}
    r = await client.put(PREFERENCES, json=json.loads(off), headers=resident["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] is None


def test_fcm_url_examples_in_the_readme():
    [row] = [line for line in README.splitlines() if line.startswith("| `FCM_URL`")]
    examples = re.findall(r"`(https?://[^`]+)`", row)
    assert len(examples) == 2
    for example in examples:
        _check_fcm_url(example)  # accepted
    with pytest.raises(ValueError, match=r"\{0\}"):
        _check_fcm_url(examples[0].replace("{0}", "my-project"))  # refused, as it says
