"""The chat's status line and its session commands, driven by Textual's pilot against
a real daemon: the meter (context used of the current model's window, the session's
cost) moves after a turn and after a switch; the title the daemon gives after the
first exchange reaches the header; /cost, /retry, /edit and /copy act on the session's
last exchange."""

from __future__ import annotations

from tui_support import open_app, replies, settle, until
from tui_support import turn_done as done

from duologue.daemon.emulator import Reply


def meter(app) -> str:
    return app.query_one("#status").render().plain


def prompts(app) -> list[str]:
    return [v.message.text for v in sorted(app.transcript.views.values(), key=lambda v: v.message.seq)
            if v.message.role == "user"]


async def test_the_meter_counts_context_and_says_the_emulator_bills_nothing(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            assert meter(app) == "0/1M ctx 0% · emulator/$0"  # sonnet's window, nothing said yet
            await pilot.press(*"why does the borrow checker reject this?", "enter")
            await until(pilot, done(app), what="the reply")
            usage = replies(app)[0].message.usage
            used = usage.prompt_tokens + usage.output_tokens
            await until(pilot, lambda: meter(app) == f"{used}/1M ctx 0% · emulator/$0",
                        what="the meter after the turn")
            await pilot.press("f2", "6")  # flash: another window
            await until(pilot, lambda: "/1.05M ctx" in meter(app), what="the meter after the switch")
            assert meter(app) == f"{used}/1.05M ctx 0% · emulator/$0"
            # the daemon's title for the first exchange reaches the header
            await until(pilot, lambda: app.session.title == "why does the borrow checker reject this?",
                        what="the automatic title")
            await settle(pilot)
            assert "why does the borrow checker reject this?" in app.query_one("#title").render().plain


async def test_the_meter_shows_the_cost_as_billed_and_cost_breaks_it_down_by_model(live, emulator, make_app):
    async with live.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            await pilot.press(*"first question", "enter")
            await until(pilot, done(app), what="the first reply")
            first = replies(app)[0].message.cost_usd
            assert first and first > 0
            await until(pilot, lambda: meter(app).endswith(f"· ${first:.4f}"), what="the first cost")
            await pilot.press("f2", "6")
            await until(pilot, lambda: app.transcript.switches, what="the switch")
            await pilot.press(*"second question", "enter")
            await until(pilot, done(app, 2), what="the second reply")
            total = (await c.get_session(app.session.id)).session.cost_usd
            await until(pilot, lambda: meter(app).endswith(f"· ${total:.4f}"), what="the total cost")
            await pilot.press(*"/cost", "enter")
            await until(pilot, lambda: "session total" in app.transcript.plain(), what="the /cost notice")
            shown = app.transcript.plain()
            assert "sonnet (claude-sonnet-5-5): 1 reply" in shown and "flash (gemini-3.8-flash): 1 reply" in shown
            assert f"session total: ${total:.4f} as billed" in shown


async def test_cost_on_the_emulator_names_it_instead_of_dollars(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            await pilot.press(*"/cost", "enter")
            await until(pilot, lambda: "no replies" in app.transcript.plain(), what="the empty /cost")
            await pilot.press(*"hello", "enter")
            await until(pilot, done(app), what="the reply")
            await pilot.press(*"/cost", "enter")
            await until(pilot, lambda: "session total" in app.transcript.plain(), what="the /cost notice")
            shown = app.transcript.plain()
            assert "sonnet (claude-sonnet-5-5): 1 reply" in shown and "emulator/$0" in shown
            assert "session total: emulator/$0 (the emulator bills nothing)" in shown


async def test_retry_sends_the_last_prompt_again_as_a_new_turn(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            await pilot.press(*"/retry", "enter")
            await until(pilot, lambda: "no prompt to send again" in app.transcript.plain(), what="the refusal")
            await pilot.press(*"explain lifetimes", "enter")
            await until(pilot, done(app), what="the first reply")
            await pilot.press(*"/retry", "enter")
            await until(pilot, done(app, 2), what="the retried reply")
            assert prompts(app) == ["explain lifetimes", "explain lifetimes"]
            assert replies(app)[0].message.turn_id != replies(app)[1].message.turn_id


async def test_edit_puts_the_last_prompt_in_the_input_and_enter_sends_a_new_turn(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            await pilot.press(*"explain lifetims", "enter")
            await until(pilot, done(app), what="the first reply")
            await pilot.press(*"/edit", "enter")
            box = app.query_one("#prompt")
            await until(pilot, lambda: box.value == "explain lifetims", what="the prompt back in the input")
            assert box.has_focus and box.cursor_location == box.document.end
            await pilot.press("backspace", "backspace", *"mes", "enter")
            await until(pilot, done(app, 2), what="the edited prompt's reply")
            assert prompts(app) == ["explain lifetims", "explain lifetimes"]


async def test_copy_puts_the_last_reply_on_the_clipboard_and_says_so(daemon, make_app):
    async with daemon.client("tui") as c:
        async with open_app(make_app, c, size=(100, 30)) as (app, pilot):
            await pilot.press(*"/copy", "enter")
            await until(pilot, lambda: "no reply to copy" in app.transcript.plain(), what="the refusal")
            await pilot.press(*"say something", "enter")
            await until(pilot, done(app), what="the reply")
            await pilot.press(*"/copy", "enter")
            reply = replies(app)[0].message.text
            await until(pilot, lambda: app.clipboard == reply, what="the reply on the clipboard")
            await until(pilot, lambda: any("copied the last reply" in str(n.message) for n in app._notifications),
                        what="the notification")
