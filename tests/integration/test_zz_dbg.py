import asyncio
from duologue.protocol import methods as m
async def test_dbg(client, daemon):
    s = await client.create_session()
    for i in range(3):
        await client.send(s.id, f"hello {i}")
    await client.attach(s.id, since_seq=0)
    n = 0
    try:
        for _ in range(200):
            n += 1
            got = await asyncio.wait_for(client.get_session(s.id), 3)
            if len([x for x in got.messages if x.role == "assistant" and x.status != "streaming"]) == 3:
                break
            e = await client.next_event(10)
            print("event", type(e).__name__, e.seq)
    except asyncio.TimeoutError:
        print("stuck at get", n)
        async with daemon.client("other") as c2:
            try:
                print("other status", (await asyncio.wait_for(c2.status(), 3)).pid)
            except asyncio.TimeoutError:
                print("other also stuck")
        try:
            print("first status", (await asyncio.wait_for(client.status(), 3)).pid)
        except asyncio.TimeoutError:
            print("first still stuck")
        raise
