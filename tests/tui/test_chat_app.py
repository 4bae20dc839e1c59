"""The terminal chat driven by Textual's pilot against a real daemon on the emulator."""

from __future__ import annotations

from image_support import PNG_B64
from tui_support import PROJECT, open_app, replies, screen_text, settle, until
from tui_support import turn_done as done

from duologue.clients.tui.transcript import SwitchMarker
from duologue.daemon.emulator import Failure, Reply
from duologue.protocol import methods as m
from duologue.protocol.entities import ImageBlock
from duologue.protocol.images import label


async def test_send_streams_the_reply_labelled_with_its_model(live, emulator, make_app):
    emulator.script("anthropic", Reply(chunks=[f"word{i} " for i in range(30)], chunk_delay=0.03))
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press(*"count please", "enter")
            await until(pilot, lambda: replies(app) and app.running and "word3" in replies(app)[0].text,
                        what="the reply to start streaming")
            assert "replying" in app.query_one("#progress").render().plain
            partial = replies(app)[0].text
            assert not partial.startswith("word0 word1 word2 word3 word4 word5 word6 word7 word8 word9 "
                                          "word10 word11 word12 word13 word14 word15 word16 word17 "
                                          "word18 word19 word20 word21 word22 word23 word24 word25 "
                                          "word26 word27 word28 word29")
            await until(pilot, done(app), what="the reply to complete")
            view = replies(app)[0]
            assert view.text == "".join(f"word{i} " for i in range(30))
            assert view.label == "sonnet · Claude Sonnet 5.5"
            assert view.message.status == "complete"
            await settle(pilot)
            screen = screen_text(app)
            assert "sonnet · Claude Sonnet 5.5" in screen and "word29" in screen
            assert "✓ sonnet" in app.query_one("#progress").render().plain


async def test_switching_model_with_one_key_marks_the_switch(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press("f2")
            assert app.selector.has_focus
            info = app.query_one("#model-info")
            await until(pilot, lambda: info.display, what="the focused model's description")
            assert info.render().plain.startswith("3 Claude Sonnet 5.5 · anthropic")
            await pilot.press("6")  # flash
            await until(pilot, lambda: app.transcript.switches, what="the switch event")
            await settle(pilot)
            assert app.query_one("#prompt").has_focus and not info.display
            marker = app.transcript.query(SwitchMarker).last()
            assert marker.content.plain == "⇄ sonnet → flash · manual: switched by user"
            assert app.selector.chosen == "gemini-3.8-flash" and app.session.current_model == "gemini-3.8-flash"
            await pilot.press(*"hi gemini", "enter")
            await until(pilot, done(app), what="the reply")
            assert replies(app)[0].label == "flash · Gemini 3.8 Flash"
            assert "[emulator gemini-3.8-flash]" in replies(app)[0].text
            # enter on a highlighted entry switches too; auto keeps the concrete model underlined
            await pilot.press("ctrl+s", "right", "right", "enter")
            await until(pilot, lambda: len(app.transcript.switches) == 2, what="the second switch")
            await until(pilot, lambda: app.session.model == "auto", what="the session to be on auto")
            assert app.selector.chosen == "auto"
            assert app.transcript.switches[-1].reason == "auto selection enabled"


async def test_cancel_keeps_the_partial_reply_marked_cancelled(live, emulator, make_app):
    emulator.script("anthropic", Reply(chunks=[f"w{i} " for i in range(400)], chunk_delay=0.02))
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press(*"talk a lot", "enter")
            await until(pilot, lambda: replies(app) and "w5 " in replies(app)[0].text, what="some streamed text")
            await pilot.press("escape")
            await until(pilot, done(app), what="the cancelled turn to end")
            view = replies(app)[0]
            assert view.message.status == "cancelled"
            assert view.text.startswith("w0 w1 w2 w3 w4 w5 ") and "w399" not in view.text
            assert "■ cancelled" in view.rendered().plain
            assert app.query_one("#progress").render().plain.startswith("■ cancelled")
            # nothing runs now: escape is harmless
            await pilot.press("escape")
            await settle(pilot)
            assert app.turn.outcome == "cancelled"


async def test_ctrl_c_cancels_too(live, emulator, make_app):
    emulator.script("anthropic", Reply(chunks=[f"w{i} " for i in range(400)], chunk_delay=0.02))
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press(*"talk", "enter")
            await until(pilot, lambda: replies(app) and replies(app)[0].text, what="streamed text")
            await pilot.press("ctrl+c")
            await until(pilot, done(app), what="the cancelled turn to end")
            assert replies(app)[0].message.status == "cancelled"


async def test_a_failed_turn_shows_a_clear_line(live, emulator, make_app):
    emulator.script("anthropic", Failure(status=400, message="messages: roles must alternate"))
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press(*"this will fail", "enter")
            await until(pilot, done(app), what="the failed turn to end")
            view = replies(app)[0]
            assert view.message.status == "failed"
            line = view.rendered().plain.splitlines()[-1]
            assert line.startswith("✗ turn failed: ") and "roles must alternate" in line
            assert app.query_one("#progress").render().plain.startswith("✗ failed: ")
            assert view.has_class("failed")


async def test_task_panel_follows_tasks_written_by_another_client(daemon, make_app):
    async with daemon.client("tui") as c, daemon.client("second") as other:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            panel = app.query_one("#tasks")
            assert not panel.display  # no tasks: collapsed
            await other.update_tasks(app.session.id, [
                m.TaskInput(content="Read the code", status="completed"),
                m.TaskInput(content="Write the fix", status="in_progress",
                            active_form="Writing the fix for the very long borrow checker complaint"),
                m.TaskInput(content="Run the tests"),
            ])
            await until(pilot, lambda: len(app.tasks.tasks) == 3, what="the task list")
            await settle(pilot)
            assert panel.display
            shown = app.query_one("#task-list").content.plain
            assert "Tasks 1/3" in shown and "by client:second" in shown
            assert "◐ Writing the fix for the very long borrow checker complaint" in shown
            progress = app.query_one("#progress")
            line = progress.render().plain
            assert "1/3 Writing the fix" in line and len(line) <= progress.content_size.width
            assert line.endswith("…")  # the active task is cut to fit 80 columns
            await pilot.press("ctrl+t")
            await settle(pilot)
            assert not panel.display
            await pilot.press("ctrl+t")
            await settle(pilot)
            assert panel.display


async def test_what_another_client_sends_appears_with_its_reply(daemon, make_app):
    async with daemon.client("tui") as c, daemon.client("editor") as editor:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await editor.switch_model(app.session.id, "haiku", reason="cheaper")
            await editor.send(app.session.id, "sent from the editor")
            await until(pilot, done(app), what="the reply to the editor's message")
            users = [v for v in app.transcript.views.values() if v.message.role == "user"]
            assert users[0].text == "sent from the editor" and users[0].via == "from another client"
            assert replies(app)[0].label == "haiku · Claude Haiku 5.5"
            assert "sent from the editor" in replies(app)[0].text
            assert app.transcript.switches[0].reason == "cheaper"
            assert app.selector.chosen == "claude-haiku-5-5"
            # and what this app sends is its own
            await pilot.press(*"mine", "enter")
            await until(pilot, done(app, 2), what="the second reply")
            users = [v for v in app.transcript.views.values() if v.message.role == "user"]
            assert users[1].text == "mine" and users[1].via is None


async def test_no_argument_opens_the_most_recent_session_of_this_project(daemon, make_app):
    async with daemon.client("tui") as c:
        older = await c.create_session(project_id=PROJECT, title="older")
        newest = await c.create_session(project_id=PROJECT, title="newest here")
        await c.create_session(project_id="/elsewhere", title="newer but elsewhere")
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            assert app.session.id == newest.id
        async with open_app(make_app, c, session=older.id, size=(80, 24)) as (app, pilot):
            assert app.session.id == older.id


async def test_a_project_without_sessions_gets_a_new_one(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, project="/brand/new", size=(80, 24)) as (app, pilot):
            assert app.session.project_id == "/brand/new"
            first = app.session.id
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.session.id != first, what="the new session")
            page = await c.list_sessions(project_id="/brand/new")
            assert len(page.sessions) == 2


async def test_picker_lists_sessions_by_project_and_opens_one(daemon, make_app):
    async with daemon.client("tui") as c:
        other = await c.create_session(project_id="/home/ada/src/other", title="elsewhere")
        here = await c.create_session(project_id=PROJECT, title="here")
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            assert app.session.id == here.id
            await pilot.press("ctrl+o")
            await until(pilot, lambda: app.screen.id != "_default" and app.screen.query("#picker-list"),
                        what="the picker")
            await settle(pilot)
            text = screen_text(app)
            text = text[text.index("Sessions"):]
            assert text.index("this project") < text.index("here") < text.index("other") < text.index("elsewhere")
            await pilot.press("down", "down", "down", "down", "enter")
            await until(pilot, lambda: app.session.id == other.id, what="the other session")
            await pilot.press("ctrl+o")
            await until(pilot, lambda: app.screen.query("#picker-list"), what="the picker")
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.session.id not in (here.id, other.id), what="a new session")
            assert app.session.project_id == PROJECT


async def test_history_shows_switch_markers_where_they_happened(daemon, make_app):
    async with daemon.client("setup") as c:
        s = await c.create_session(project_id=PROJECT, model="sonnet")
        await c.attach(s.id, since_seq=s.last_seq)
        from conversation_support import send_and_wait
        await send_and_wait(c, s.id, "first")
        await c.switch_model(s.id, "flash", reason="long read")
        await send_and_wait(c, s.id, "second")
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(120, 40)) as (app, pilot):
            plain = app.transcript.plain()
            assert plain.index("first") < plain.index("sonnet → flash · manual: long read") < plain.index("second")
            assert [v.label for v in replies(app)] == ["sonnet · Claude Sonnet 5.5", "flash · Gemini 3.8 Flash"]


async def test_emulator_banner_is_loud(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            banner = app.query_one("#banner")
            assert banner.display and "EMULATOR" in screen_text(app).splitlines()[0]
            await pilot.press(*"/help", "enter")
            await settle(pilot)
            assert "ANTHROPIC_API_KEY" in app.transcript.plain()


async def test_no_banner_with_real_providers(live, make_app):
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            assert not app.query_one("#banner").display


async def test_selector_fits_80_columns_focused_or_not(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            for focus in (False, True):
                if focus:
                    await pilot.press("f2")
                await settle(pilot)
                region = app.selector.region
                assert region.right <= 80 and region.width > 0
                assert app.selector.render().cell_len <= app.selector.content_size.width
                assert app.query_one("#title").region.width >= 10


async def test_failover_is_marked_with_its_reason(live, emulator, make_app):
    emulator.script("anthropic", Failure(status=529))
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press(*"hello", "enter")
            await until(pilot, lambda: any(v.message.status == "complete" for v in replies(app))
                        and not app.running, what="the reply after failover")
            switch = app.transcript.switches[-1]
            assert switch.kind == "failover"
            marker = app.transcript.query(SwitchMarker).last().content.plain
            assert marker.startswith("⇄ sonnet → ") and "failover: " in marker
            assert replies(app)[-1].message.model == switch.to_model


async def test_the_app_follows_the_session_across_a_daemon_restart(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            sid = app.session.id
            daemon.restart()
            await until(pilot, lambda: "reconnected" in app.transcript.plain(), timeout=30,
                        what="the reconnection")
            async with daemon.client("editor") as editor:
                await editor.send(sid, "after the restart")
                await until(pilot, done(app), what="the reply after the restart")
            assert "the daemon connection was lost" in app.transcript.plain()
            assert "You just said: “after the restart”" in replies(app)[0].text


async def test_slash_commands_switch_attach_context_and_report_mistakes(daemon, make_app, tmp_path):
    source = tmp_path / "lib.rs"
    source.write_text("fn a() {}\nfn b() {}\nfn c() {}\n")
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await pilot.press(*"/switch lite", "enter")
            await until(pilot, lambda: app.transcript.switches, what="the switch")
            assert app.session.current_model == "gemini-3.5-flash-lite"
            app.query_one("#prompt").value = f"/context {source}:2-3 what is b?"
            await pilot.press("enter")
            await until(pilot, done(app), what="the reply")
            user = next(v for v in app.transcript.views.values() if v.message.role == "user")
            assert f"[context {source}:2-3]" in user.rendered().plain and user.text == "what is b?"
            assert user.via is None
            await pilot.press(*"/switch gpt-9", "enter")
            await until(pilot, lambda: "cannot switch to gpt-9: unknown model" in app.transcript.plain(),
                        what="the error line")
            await pilot.press(*"/bogus", "enter")
            await until(pilot, lambda: "unknown command '/bogus'" in app.transcript.plain(), what="the hint")


async def test_an_image_another_client_sends_is_one_label_line_above_the_text(daemon, make_app):
    shot = ImageBlock(media_type="image/png", data=PNG_B64, name="shot.png")
    async with daemon.client("tui") as c, daemon.client("editor") as editor:
        async with open_app(make_app, c, size=(80, 24)) as (app, pilot):
            await editor.send(app.session.id, "what is in it?", images=[shot])
            await until(pilot, done(app), what="the reply to the image")
            user = next(v for v in app.transcript.views.values() if v.message.role == "user")
            shown = user.rendered().plain
            assert label(shot) in shown and user.text == "what is in it?" and PNG_B64 not in shown
