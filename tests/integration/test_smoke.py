from duologue.protocol import methods as m


async def test_two_clients_see_the_same_session_events(client, client2):
    session = await client.create_session(title="shared")
    await client2.attach(session.id, since_seq=session.last_seq)
    await client.rename_session(session.id, "renamed")
    event = await client2.next_event(10)
    assert isinstance(event, m.SessionRenamed)
    assert event.title == "renamed" and event.seq == session.last_seq + 1
