"""``daemon.redact.scrub``: a key never survives in text, whatever case or cut it has.

The properties: no fragment of 8+ characters of a key survives (hypothesis picks the
key, the fragment, its case and the text around it); text holding no such fragment
comes back unchanged.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duologue.daemon.redact import MARK, MIN_FRAGMENT, scrub

KEY = "sk-ant-api03-Zq7XbLm4Np2Rt9Vw6Yc1Hd8Kf3Js5Ga0"


def _leaks(text: str, key: str) -> list[str]:
    low, k = text.lower(), key.lower()
    return [k[i:i + MIN_FRAGMENT] for i in range(len(k) - MIN_FRAGMENT + 1) if k[i:i + MIN_FRAGMENT] in low]


def test_the_exact_key_is_removed():
    assert scrub(f"invalid x-api-key: {KEY}.", KEY) == f"invalid x-api-key: {MARK}."


def test_the_key_lower_or_upper_cased_is_removed():
    for echoed in (KEY.lower(), KEY.upper(), KEY.swapcase()):
        out = scrub(f"bad key '{echoed}' given", KEY)
        assert out == f"bad key '{MARK}' given" and not _leaks(out, KEY)


def test_a_long_fragment_of_the_key_is_removed_and_short_pieces_are_kept():
    cut = f"key {KEY[:12]}...{KEY[-9:]} refused"
    out = scrub(cut, KEY)
    assert out == f"key {MARK}...{MARK} refused"
    assert scrub(f"prefix {KEY[:7]} is fine", KEY) == f"prefix {KEY[:7]} is fine"


def test_several_secrets_and_none_values():
    other = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
    out = scrub(f"{KEY} and {other.lower()}", None, KEY, "", other)
    assert out == f"{MARK} and {MARK}"


def test_a_short_secret_is_removed_where_it_appears_whole():
    assert scrub("token=abc12 ok ABC12", "abc12") == f"token={MARK} ok {MARK}"


def test_non_ascii_text_around_a_key_keeps_its_letters():
    out = scrub(f"İstanbul — ключ {KEY.upper()} — ß", KEY)
    assert out == f"İstanbul — ключ {MARK} — ß"


@given(key=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=MIN_FRAGMENT, max_size=60),
       before=st.text(max_size=40), after=st.text(max_size=40), data=st.data())
def test_no_fragment_of_eight_or_more_characters_survives(key, before, after, data):
    start = data.draw(st.integers(0, len(key) - MIN_FRAGMENT))
    end = data.draw(st.integers(start + MIN_FRAGMENT, len(key)))
    fragment = key[start:end]
    fragment = data.draw(st.sampled_from([fragment, fragment.lower(), fragment.upper(), fragment.swapcase()]))
    out = scrub(before + fragment + after, key)
    assert not _leaks(out, key)


@given(text=st.text(max_size=200))
def test_text_without_a_fragment_comes_back_unchanged(text):
    if not _leaks(text, KEY):
        assert scrub(text, KEY) == text
