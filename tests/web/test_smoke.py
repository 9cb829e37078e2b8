from __future__ import annotations

from typing import Any


async def test_login_and_send(login_as: Any, client: Any) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    r = await alice.submit("/chats/direct", {"username": "bob"})
    assert r.status_code == 303
    loc = r.headers["Location"]
    page = await alice.get(loc.split("#")[0])
    html = await page.get_data(as_text=True)
    assert page.status_code == 200, html
    import re
    cid = re.search(r'name="client_msg_id" value="([^"]+)"', html).group(1)
    path = loc.split("#")[0]
    r = await alice.submit(path + "/messages", {"body": "K+ < 3.5 & BP > 140 <script>alert(1)</script>", "client_msg_id": cid}, page=path)
    assert r.status_code == 303, await r.get_data(as_text=True)
    page = await alice.get(path)
    html = await page.get_data(as_text=True)
    assert "K+ &lt; 3.5 &amp; BP &gt; 140 &lt;script&gt;" in html
