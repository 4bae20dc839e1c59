import asyncio, time
from duologue.protocol import methods as m
async def test_dbg(client, daemon):
    s = await client.create_session()
    t0 = time.monotonic()
    for i in range(3):
        await client.send(s.id, f"hello {i}")
    print("sent", time.monotonic() - t0)
    await client.attach(s.id, since_seq=0)
    print("attached", time.monotonic() - t0)
    for i in range(30):
        t = time.monotonic()
        try:
            got = await asyncio.wait_for(client.get_session(s.id), 30)
        except asyncio.TimeoutError:
            print("timeout"); break
        print(f"{t - t0:.3f} get took {time.monotonic() - t:.3f}", [x.status[0] for x in got.messages])
        if len([x for x in got.messages if x.role == "assistant" and x.status != "streaming"]) == 3: break
